-- Audit events recorded in the transaction of what they record but not yet
-- sealed into the exam's hash chain (cbt/audit.py: append_later, chain). A
-- background task in every worker moves them into audit_events in order, so
-- saves never wait for the exam's chain lock.
--
-- No foreign key on exam_id, on purpose: checking it takes a KEY SHARE lock
-- on the exam's row in every save, and thousands of saves a second locking
-- one row is what made them slow (multixacts). The sealed row in
-- audit_events keeps the key.
CREATE TABLE audit_pending (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exam_id     bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    kind        text NOT NULL,
    attempt_id  bigint,
    content     jsonb NOT NULL
);
CREATE INDEX audit_pending_exam_idx ON audit_pending (exam_id, id);
