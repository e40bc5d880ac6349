-- Item sets: one stimulus (a reading passage, a data table) shared by several
-- child items, versioned and reviewed as one unit; and each release's level
-- scheme (the 2025 three levels, or the legacy four).

CREATE TABLE bank_sets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    set_id           text NOT NULL,
    version          integer NOT NULL,
    subject          text NOT NULL,
    topic            text NOT NULL,
    -- May a form shuffle the children among themselves?
    shuffle          boolean NOT NULL,
    -- Canonical YAML of the set with its children (itembank's serialise_set):
    -- the set is rebuilt from it exactly; content_sha256 is over these bytes.
    source           text NOT NULL,
    content_sha256   text NOT NULL,
    first_release_id bigint NOT NULL REFERENCES bank_releases(id),
    UNIQUE (set_id, version)
);

CREATE TABLE release_sets (
    release_id  bigint NOT NULL REFERENCES bank_releases(id),
    set_pk      bigint NOT NULL REFERENCES bank_sets(id),
    PRIMARY KEY (release_id, set_pk)
);

-- A child knows its set and its place in it; an item in no set has neither.
ALTER TABLE bank_items
    ADD COLUMN set_pk bigint REFERENCES bank_sets(id),
    ADD COLUMN set_position integer,
    ADD CONSTRAINT bank_items_set_place CHECK ((set_pk IS NULL) = (set_position IS NULL));
CREATE INDEX bank_items_set_idx ON bank_items (set_pk) WHERE set_pk IS NOT NULL;

-- The release's levels in order, [[id, name], ...]; NULL: the legacy four.
ALTER TABLE bank_releases ADD COLUMN levels jsonb;
