-- Safe Exam Browser versions without request headers prove themselves through
-- their JavaScript API on a page whose URL carries a single-use server nonce.
CREATE TABLE seb_nonces (
    nonce         text PRIMARY KEY,
    candidate_id  bigint NOT NULL REFERENCES candidates(id),
    path          text NOT NULL,
    issued_at     timestamptz NOT NULL DEFAULT now()
);

-- When this sign-in passed the JavaScript-API check.
ALTER TABLE candidate_sessions ADD COLUMN seb_verified_at timestamptz;
