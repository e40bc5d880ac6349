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

-- audit_pending is a queue: every save adds a row and the chainer deletes it
-- within a second, so its last pages keep emptying, and autovacuum would
-- truncate them under an ACCESS EXCLUSIVE lock that every save then waits
-- behind. The emptied pages are reused by the next inserts anyway.
ALTER TABLE audit_pending SET (vacuum_truncate = off);
