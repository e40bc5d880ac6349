-- Autovacuum during an exam, on the tables every save writes.
--
-- The steady load test (5,000 students) showed every save stalling for about
-- half a second once a minute, at the autovacuum naptime: its ANALYZE of
-- response_history, audit_events and responses took 0.4-0.6 s of CPU each,
-- most of it sorting sampled jsonb values to build statistics that no query
-- uses (nothing filters or joins on an answer's value or an event's content;
-- every read is by key). Without statistics on those columns ANALYZE only
-- samples the keys.
ALTER TABLE response_history ALTER COLUMN value SET STATISTICS 0;
ALTER TABLE responses ALTER COLUMN value SET STATISTICS 0;
ALTER TABLE audit_events ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE audit_pending ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE attempts ALTER COLUMN layout SET STATISTICS 0;

-- And a tenth of the default sample (3,000 rows, not 30,000) for the rest of
-- the three tables that grow by a row or more a save: their rows are found by
-- key (the save's plan does not even consult the statistics, autosave.py
-- PLANS), and the minute's ANALYZE still took a core for a second on a busy
-- machine, long enough for the saves queued meanwhile to pass 0.5 s.
ALTER TABLE response_history
    ALTER COLUMN attempt_id SET STATISTICS 10, ALTER COLUMN seq SET STATISTICS 10,
    ALTER COLUMN item_ref SET STATISTICS 10, ALTER COLUMN kind SET STATISTICS 10,
    ALTER COLUMN received_at SET STATISTICS 10;
ALTER TABLE responses
    ALTER COLUMN attempt_id SET STATISTICS 10, ALTER COLUMN item_ref SET STATISTICS 10,
    ALTER COLUMN flagged SET STATISTICS 10, ALTER COLUMN value_seq SET STATISTICS 10,
    ALTER COLUMN flag_seq SET STATISTICS 10, ALTER COLUMN score SET STATISTICS 10,
    ALTER COLUMN updated_at SET STATISTICS 10;
ALTER TABLE audit_events
    ALTER COLUMN exam_id SET STATISTICS 10, ALTER COLUMN seq SET STATISTICS 10, ALTER COLUMN at SET STATISTICS 10,
    ALTER COLUMN actor SET STATISTICS 10, ALTER COLUMN kind SET STATISTICS 10,
    ALTER COLUMN attempt_id SET STATISTICS 10, ALTER COLUMN prev_hash SET STATISTICS 10,
    ALTER COLUMN hash SET STATISTICS 10;

-- audit_pending is a queue: every save adds a row and the chainer deletes it
-- within a second, so its last pages keep emptying, and autovacuum would
-- truncate them under an ACCESS EXCLUSIVE lock that every save then waits
-- behind. The emptied pages are reused by the next inserts anyway.
ALTER TABLE audit_pending SET (vacuum_truncate = off);
