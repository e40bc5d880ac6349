-- Every open proctor console re-reads its room (40 candidates) whenever the
-- exam changes, up to twice a second (proctor.events). Without this index
-- each read walked every candidate of the exam (5,000 in a school) to keep
-- its room's 40.
CREATE INDEX candidates_exam_room_idx ON candidates (exam_id, room);
