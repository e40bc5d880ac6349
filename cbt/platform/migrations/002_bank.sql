-- The question bank: trusted signing keys, imported releases, every item
-- version ever imported, and media by content hash.

-- Public keys whose signatures the server accepts on bank releases.
CREATE TABLE trusted_keys (
    fingerprint     text PRIMARY KEY CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    name            text NOT NULL,
    public_key_pem  text NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE bank_releases (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             text NOT NULL,
    version          text NOT NULL,
    title            text,
    subject          text,
    description      text,
    publisher        text,
    signer           text NOT NULL REFERENCES trusted_keys(fingerprint),
    signed_at        timestamptz NOT NULL,
    -- The exact signed bytes, kept as proof of what was approved.
    manifest         bytea NOT NULL,
    signature        bytea NOT NULL,
    manifest_sha256  text NOT NULL,
    item_count       integer NOT NULL,
    imported_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- One row per item version; a version never changes once stored.
CREATE TABLE bank_items (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id          text NOT NULL,
    version          integer NOT NULL,
    type             text NOT NULL CHECK (type IN ('single', 'multiple', 'truefalse4', 'short', 'essay')),
    subject          text NOT NULL,
    grade            integer,
    topic            text NOT NULL,
    level            integer NOT NULL CHECK (level BETWEEN 1 AND 4),
    points           numeric NOT NULL CHECK (points > 0),
    lang             text NOT NULL,
    status           text NOT NULL,
    tags             text[] NOT NULL DEFAULT '{}',
    stem             text NOT NULL,
    -- Canonical YAML of the item (itembank's serialiser): the item is
    -- rebuilt from it exactly; content_sha256 is over these bytes.
    source           text NOT NULL,
    content_sha256   text NOT NULL,
    first_release_id bigint NOT NULL REFERENCES bank_releases(id),
    UNIQUE (item_id, version)
);
CREATE INDEX bank_items_filter_idx ON bank_items (subject, topic, level, type);

CREATE TABLE release_items (
    release_id  bigint NOT NULL REFERENCES bank_releases(id),
    item_pk     bigint NOT NULL REFERENCES bank_items(id),
    PRIMARY KEY (release_id, item_pk)
);
CREATE INDEX release_items_item_idx ON release_items (item_pk);

CREATE TABLE media_blobs (
    sha256   text PRIMARY KEY,
    content  bytea NOT NULL
);

CREATE TABLE release_media (
    release_id  bigint NOT NULL REFERENCES bank_releases(id),
    path        text NOT NULL,
    sha256      text NOT NULL REFERENCES media_blobs(sha256),
    PRIMARY KEY (release_id, path)
);
