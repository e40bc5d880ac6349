-- The teachers' workspace: items written in the browser, their review by the
-- subject group (tổ chuyên môn), and releases built and signed from them.
-- What is signed is imported into the bank tables (002) like any release, so
-- exams only ever draw from signed, immutable item versions.

-- The subjects a teacher writes for and a reviewer reviews.
CREATE TABLE staff_subjects (
    user_id  bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    subject  text NOT NULL CHECK (length(subject) BETWEEN 1 AND 64),
    PRIMARY KEY (user_id, subject)
);

-- One row per item version being written. An approved version is frozen:
-- editing it creates version + 1 as a new draft.
CREATE TABLE draft_items (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES orgs(id),
    item_id      text NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    type         text NOT NULL CHECK (type IN ('single', 'multiple', 'truefalse4', 'short', 'essay')),
    subject      text NOT NULL,
    grade        integer,
    topic        text NOT NULL,
    level        integer NOT NULL CHECK (level BETWEEN 1 AND 4),
    points       numeric NOT NULL CHECK (points > 0),
    stem         text NOT NULL,
    -- Canonical YAML (itembank's serialiser); the item is rebuilt from it.
    source       text NOT NULL,
    state        text NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'submitted', 'returned', 'approved', 'retired')),
    author_id    bigint NOT NULL REFERENCES users(id),
    reviewer_id  bigint REFERENCES users(id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, version),
    -- Nobody approves their own item.
    CHECK (reviewer_id IS NULL OR reviewer_id <> author_id)
);
CREATE INDEX draft_items_queue_idx ON draft_items (org_id, subject, state);

CREATE TABLE draft_media (
    draft_pk  bigint NOT NULL REFERENCES draft_items(id) ON DELETE CASCADE,
    path      text NOT NULL,
    sha256    text NOT NULL REFERENCES media_blobs(sha256),
    PRIMARY KEY (draft_pk, path)
);

-- The review conversation: submit, approve, return (with a comment), retire.
CREATE TABLE review_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    draft_pk  bigint NOT NULL REFERENCES draft_items(id) ON DELETE CASCADE,
    actor_id  bigint NOT NULL REFERENCES users(id),
    action    text NOT NULL CHECK (action IN ('create', 'edit', 'submit', 'approve', 'return', 'retire', 'duplicate')),
    comment   text NOT NULL DEFAULT '',
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX review_events_draft_idx ON review_events (draft_pk, at);

-- Signing keys kept on the server, encrypted (PKCS#8 under a passphrase that
-- is asked each time and never stored).
CREATE TABLE signing_keys (
    fingerprint      text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    org_id           bigint NOT NULL REFERENCES orgs(id),
    name             text NOT NULL,
    private_key_pem  bytea NOT NULL,
    public_key_pem   text NOT NULL,
    created_by       bigint NOT NULL REFERENCES users(id),
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- A release being built from approved items. Its files and their hashes are
-- fixed when it is created; a signature (made later, offline or here) is
-- accepted only over a manifest that lists exactly those files.
CREATE TABLE workspace_releases (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id           bigint NOT NULL REFERENCES orgs(id),
    name             text NOT NULL,
    version          text NOT NULL,
    title            text NOT NULL DEFAULT '',
    subject          text NOT NULL DEFAULT '',
    created_by       bigint NOT NULL REFERENCES users(id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- The unsigned release (zip of bank.yaml, items, media); the manifest
    -- as `cbt bank sign` writes it, signer and time left empty until signed.
    package          bytea NOT NULL,
    manifest         bytea NOT NULL,
    signature        bytea,
    signer           text,
    signed_at        timestamptz,
    bank_release_id  bigint REFERENCES bank_releases(id),
    UNIQUE (name, version)
);

CREATE TABLE workspace_release_items (
    release_id  bigint NOT NULL REFERENCES workspace_releases(id) ON DELETE CASCADE,
    draft_pk    bigint NOT NULL REFERENCES draft_items(id),
    PRIMARY KEY (release_id, draft_pk)
);
