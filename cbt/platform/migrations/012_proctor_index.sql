-- The proctor's room view counts each candidate's network and Safe Exam
-- Browser refusals in the audit chain; without this index that count scans
-- every event of the exam (one per saved batch) once per candidate.
CREATE INDEX audit_events_refusals_idx ON audit_events (exam_id, actor) WHERE kind = 'policy_refused';
