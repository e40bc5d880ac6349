-- Every open proctor console re-reads its room (40 candidates) each time it
-- is updated (proctor.events). Without this index each read walked every
-- candidate of the exam (5,000 in a school) to keep its room's 40.
CREATE INDEX candidates_exam_room_idx ON candidates (exam_id, room);
