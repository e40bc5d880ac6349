-- A proctor may let one candidate sit without Safe Exam Browser (e.g. SEB
-- fails on that lab computer); the decision is in the audit chain.
ALTER TABLE candidates ADD COLUMN seb_override boolean NOT NULL DEFAULT false;

-- Start storms: a token bucket per exam and the queue of those waiting for a
-- token, so the first to press Start is the first admitted.
CREATE TABLE admission_buckets (
    exam_id     bigint PRIMARY KEY REFERENCES exams(id),
    tokens      double precision NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE admission_queue (
    exam_id       bigint NOT NULL REFERENCES exams(id),
    candidate_id  bigint NOT NULL REFERENCES candidates(id),
    enqueued_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (exam_id, candidate_id)
);
CREATE INDEX admission_queue_order_idx ON admission_queue (exam_id, enqueued_at);

-- How often a candidate's address changed during the attempt (proctor view).
ALTER TABLE attempts ADD COLUMN addr_changes integer NOT NULL DEFAULT 0;
