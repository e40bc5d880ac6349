-- An exam may draw from several bank releases of its subject (issue 16 item
-- 17): a school's own items next to the department's bank. exams.release_id
-- stays the exam's first release, so what reads it alone still names one;
-- this table lists them all, in the order the exam names them (that order
-- decides whose media an item shown by two releases uses).
CREATE TABLE exam_releases (
    exam_id     bigint NOT NULL REFERENCES exams(id),
    release_id  bigint NOT NULL REFERENCES bank_releases(id),
    position    integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (exam_id, release_id),
    UNIQUE (exam_id, position)
);

INSERT INTO exam_releases (exam_id, release_id, position) SELECT id, release_id, 0 FROM exams;
