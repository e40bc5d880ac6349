-- Item statistics per item version (bank_items.id) per administration (exam),
-- computed from the submitted attempts by `cbt exam analyze` or the exam
-- board's pages; recomputing an exam replaces its rows. For form balancing.

CREATE TABLE item_stats (
    exam_id           bigint NOT NULL REFERENCES exams(id),
    item_pk           bigint NOT NULL REFERENCES bank_items(id),
    n                 integer NOT NULL,
    p                 double precision,
    r_pb              double precision,
    r_pb_total        double precision,
    r_bis             double precision,
    d_upper_lower     double precision,
    alpha_if_deleted  double precision,
    omitted           integer NOT NULL DEFAULT 0,
    flags             text[] NOT NULL DEFAULT '{}',
    computed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exam_id, item_pk)
);
CREATE INDEX item_stats_item_idx ON item_stats (item_pk);

-- The whole report of cbt.analysis.analyze_matrix for the exam (test
-- statistics, histogram, items with their options), as shown to the board.
CREATE TABLE exam_stats (
    exam_id      bigint PRIMARY KEY REFERENCES exams(id),
    report       jsonb NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
