-- An exam's time zone: pages and exports show its times in it. NULL: the
-- server's CBT_TIME_ZONE (Asia/Ho_Chi_Minh unless set), which is what every
-- exam made before this had in mind; an exam file's `time_zone:` sets it.
ALTER TABLE exams ADD COLUMN time_zone text CHECK (time_zone <> '');
