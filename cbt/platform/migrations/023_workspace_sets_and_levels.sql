-- Item sets written in the workspace, and the level scheme a workspace writes at.

-- A set (a passage and the questions on it) is written, reviewed, approved,
-- versioned and put into releases as one unit, so it is one draft_items row
-- of type 'set': its source is the set's canonical YAML with its children
-- (itembank's serialise_set), its stem the passage, its points the sum of its
-- children's. It has no level of its own (each child has one). Review events,
-- media and release membership then serve a set as they serve an item.
ALTER TABLE draft_items DROP CONSTRAINT draft_items_type_check;
ALTER TABLE draft_items ADD CONSTRAINT draft_items_type_check
    CHECK (type IN ('single', 'multiple', 'truefalse4', 'short', 'essay', 'set'));
ALTER TABLE draft_items ALTER COLUMN level DROP NOT NULL;
ALTER TABLE draft_items ADD CONSTRAINT draft_items_set_level CHECK ((level IS NULL) = (type = 'set'));

-- A set's children in order, as its source holds them: so that an id stays one
-- item's or one set's across the workspace, and lists filter sets by their
-- children's levels, without reading every set's YAML. Rewritten with the row.
CREATE TABLE draft_set_children (
    draft_pk  bigint NOT NULL REFERENCES draft_items(id) ON DELETE CASCADE,
    position  integer NOT NULL CHECK (position >= 0),
    child_id  text NOT NULL,
    type      text NOT NULL CHECK (type IN ('single', 'multiple', 'truefalse4', 'short', 'essay')),
    level     integer NOT NULL CHECK (level BETWEEN 1 AND 4),
    points    numeric NOT NULL CHECK (points > 0),
    PRIMARY KEY (draft_pk, position),
    UNIQUE (draft_pk, child_id)
);
CREATE INDEX draft_set_children_id_idx ON draft_set_children (child_id);

-- The level scheme an organisation's teachers write at (itembank.levels):
-- 'legacy' (Nhận biết, Thông hiểu, Vận dụng, Vận dụng cao) or '2025' (Biết,
-- Hiểu, Vận dụng). A school without a row writes at its department's; an
-- organisation with neither, at the legacy four, as every workspace did before.
-- The editor names levels by it, and a release built in the workspace says it
-- in its bank.yaml.
CREATE TABLE workspace_levels (
    org_id  bigint PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    scheme  text NOT NULL CHECK (scheme IN ('legacy', '2025')),
    set_by  bigint REFERENCES users(id),
    set_at  timestamptz NOT NULL DEFAULT now()
);
