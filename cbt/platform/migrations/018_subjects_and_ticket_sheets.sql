-- Subjects chosen from a list, and issued tickets carried to the page that shows them.

-- The subjects an organisation keeps (cbt/subjects.py): items, and the
-- subjects teachers write for and reviewers review, are chosen from it. A
-- school uses its department's list and any it adds itself. Until now
-- subjects were typed, and an item saved as "Toán" never reached the review
-- queue of a reviewer of "toan".
CREATE TABLE subjects (
    org_id  bigint NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    code    text NOT NULL CHECK (code ~ '^[a-z][a-z0-9-]{0,31}$'),
    name    text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    PRIMARY KEY (org_id, code)
);

-- Every department, and every school without one, starts from the usual
-- subjects of Vietnamese secondary schools (cbt.subjects.STANDARD: keep the two in step).
INSERT INTO subjects (org_id, code, name)
SELECT o.id, s.code, s.name FROM orgs o CROSS JOIN (VALUES
    ('toan', 'Toán'), ('ngu-van', 'Ngữ văn'), ('tieng-anh', 'Tiếng Anh'), ('vat-li', 'Vật lí'),
    ('hoa-hoc', 'Hoá học'), ('sinh-hoc', 'Sinh học'), ('lich-su', 'Lịch sử'), ('dia-li', 'Địa lí'),
    ('tin-hoc', 'Tin học'), ('gdktpl', 'Giáo dục kinh tế và pháp luật'), ('cong-nghe', 'Công nghệ'),
    ('khtn', 'Khoa học tự nhiên'), ('lsdl', 'Lịch sử và Địa lí'), ('gdcd', 'Giáo dục công dân'),
    ('gdqpan', 'Giáo dục quốc phòng và an ninh'), ('gdtc', 'Giáo dục thể chất'), ('am-nhac', 'Âm nhạc'),
    ('mi-thuat', 'Mĩ thuật'), ('tieng-phap', 'Tiếng Pháp'), ('tieng-nga', 'Tiếng Nga'),
    ('tieng-trung', 'Tiếng Trung Quốc'), ('tieng-nhat', 'Tiếng Nhật'), ('tieng-han', 'Tiếng Hàn'),
    ('tieng-duc', 'Tiếng Đức')
) AS s(code, name)
WHERE o.parent_id IS NULL;

-- cbt.subjects.key: case, accents, spaces and punctuation ignored, i for y.
CREATE FUNCTION pg_temp.subject_key(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(regexp_replace(lower(translate(regexp_replace(normalize(t, NFD), '[\u0300-\u036f]', '', 'g'),
                                                    'Đđ', 'dd')), '[^a-z0-9]+', '', 'g'), 'y', 'i')
$$;

-- Typed subjects that name a subject of the list (by code or name) become its code.
CREATE TEMP TABLE subject_map ON COMMIT DROP AS
SELECT DISTINCT ON (o.id, used.subject) o.id AS org_id, used.subject AS old, s.code AS new
FROM (SELECT org_id, subject FROM draft_items
      UNION SELECT u.org_id, ss.subject FROM staff_subjects ss JOIN users u ON u.id = ss.user_id) used
JOIN orgs o ON o.id = used.org_id
JOIN subjects s ON (s.org_id = o.id OR s.org_id = o.parent_id)
     AND pg_temp.subject_key(used.subject) IN (pg_temp.subject_key(s.code), pg_temp.subject_key(s.name))
WHERE used.subject <> s.code
ORDER BY o.id, used.subject, s.code;

-- The item's YAML says its subject too: one top-level line, rewritten with it.
-- A version already in the bank stays as signed (the bank holds the same bytes).
UPDATE draft_items d
SET subject = m.new, source = regexp_replace(d.source, '^subject:.*$', 'subject: ' || m.new, 'n')
FROM subject_map m
WHERE m.org_id = d.org_id AND m.old = d.subject
  AND NOT EXISTS (SELECT 1 FROM bank_items b WHERE b.item_id = d.item_id AND b.version = d.version);

INSERT INTO staff_subjects (user_id, subject)
SELECT ss.user_id, m.new FROM staff_subjects ss JOIN users u ON u.id = ss.user_id
JOIN subject_map m ON m.org_id = u.org_id AND m.old = ss.subject
ON CONFLICT DO NOTHING;
DELETE FROM staff_subjects ss USING users u, subject_map m
WHERE u.id = ss.user_id AND m.org_id = u.org_id AND m.old = ss.subject;
-- What matches nothing stays as it was; the Subjects page lists it as not in the list.

-- Tickets just issued, kept until the page that shows them is opened once
-- (then deleted) or for a few minutes: the POST that issues them redirects
-- there, so reloading shows them no more and issues nothing. The random id in
-- the redirect is not stored: the row is found by its SHA-256 and encrypted
-- (AES-256-GCM) under a key derived from it, so the rows alone show no ticket.
CREATE TABLE ticket_sheets (
    id_sha256   bytea PRIMARY KEY,
    exam_id     bigint NOT NULL REFERENCES exams(id),
    issued_by   bigint NOT NULL REFERENCES users(id),
    sheet       bytea NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX ticket_sheets_expiry_idx ON ticket_sheets (expires_at);
