-- Essay marking: the mark a person gave each essay of a submitted attempt,
-- and every mark ever given (re-marking overwrites the current one only).
-- Questions are identified as the attempt's form names them (item_ref), the
-- same key as responses.

CREATE TABLE essay_marks (
    attempt_id  bigint NOT NULL REFERENCES attempts(id),
    item_ref    text NOT NULL,
    points      numeric NOT NULL CHECK (points >= 0),
    comment     text NOT NULL DEFAULT '' CHECK (length(comment) <= 4000),
    marker_id   bigint NOT NULL REFERENCES users(id),
    marked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt_id, item_ref)
);

-- Append-only in practice: a dispute over a mark is settled from this and
-- the exam's audit chain, which records the same event.
CREATE TABLE essay_mark_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id  bigint NOT NULL REFERENCES attempts(id),
    item_ref    text NOT NULL,
    points      numeric NOT NULL CHECK (points >= 0),
    comment     text NOT NULL DEFAULT '',
    marker_id   bigint NOT NULL REFERENCES users(id),
    marked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX essay_mark_history_attempt_idx ON essay_mark_history (attempt_id, item_ref);
