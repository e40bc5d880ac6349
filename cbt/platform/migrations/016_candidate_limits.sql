-- The candidate API after an outside security review (issue 15): what its
-- limits, withdrawn changes and capped integrity reports need.

-- Wrong tickets counted per ticket typed and per address, wrong room access
-- codes per candidate and per address (delivery.py); 'addr' and 'account'
-- stay the staff sign-in's.
-- NOT VALID: the old check already held every row, and validating would scan
-- the table under its lock at start-up.
ALTER TABLE login_failures DROP CONSTRAINT login_failures_scope_check;
ALTER TABLE login_failures ADD CONSTRAINT login_failures_scope_check
    CHECK (scope IN ('addr', 'account', 'ticket', 'ticket_addr', 'access_code', 'access_code_addr')) NOT VALID;

-- A change the server refused as malformed and the page then withdrew: it
-- holds its seq, so the changes after it are acknowledged, and changes no
-- answer. NOT VALID: the old check already held every row.
ALTER TABLE response_history DROP CONSTRAINT response_history_kind_check;
ALTER TABLE response_history ADD CONSTRAINT response_history_kind_check
    CHECK (kind IN ('answer', 'flag', 'withdrawn')) NOT VALID;

-- The address a candidate signed in from: a proctor clears the sign-in lock of
-- the addresses their room signs in from.
ALTER TABLE candidate_sessions ADD COLUMN addr text;

-- Integrity events past the caps (lockdown.INTEGRITY_MAX_*) are counted here
-- instead of stored; the row also orders one attempt's reports (row lock).
CREATE TABLE integrity_overflow (
    attempt_id       bigint PRIMARY KEY REFERENCES attempts(id),
    dropped          bigint NOT NULL DEFAULT 0,
    last_dropped_at  timestamptz
);

-- A candidate's Safe Exam Browser nonces, to keep only the latest few.
CREATE INDEX seb_nonces_candidate_idx ON seb_nonces (candidate_id, issued_at);
