-- Exams, rosters, pre-generated forms, attempts and every saved change.

CREATE TABLE exams (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id             bigint NOT NULL REFERENCES orgs(id),
    code               text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    title              text NOT NULL,
    subject            text NOT NULL DEFAULT '',
    release_id         bigint NOT NULL REFERENCES bank_releases(id),
    -- The exam definition as loaded from its YAML (normalised), for reference.
    spec               jsonb NOT NULL,
    -- Seeds every candidate's form (HMAC); never leaves the server except
    -- to the exam board, who can re-derive any form from it.
    secret             bytea NOT NULL,
    duration_seconds   integer NOT NULL CHECK (duration_seconds > 0),
    opens_at           timestamptz NOT NULL,
    closes_at          timestamptz NOT NULL,
    late_entry_until   timestamptz NOT NULL,
    grace_seconds      integer NOT NULL DEFAULT 30,
    show_score         boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'open', 'closed')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (opens_at < closes_at),
    CHECK (late_entry_until BETWEEN opens_at AND closes_at)
);

CREATE TABLE candidates (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exam_id           bigint NOT NULL REFERENCES exams(id),
    code              text NOT NULL CHECK (code ~ '^[0-9]{10}$'),
    full_name         text NOT NULL,
    date_of_birth     date NOT NULL,
    class_name        text NOT NULL DEFAULT '',
    school            text NOT NULL DEFAULT '',
    room              text NOT NULL DEFAULT '',
    time_multiplier   numeric NOT NULL DEFAULT 1 CHECK (time_multiplier BETWEEN 1 AND 3),
    -- SHA-256 of the normalised ticket; the ticket itself is printed once.
    ticket_hash       bytea UNIQUE,
    UNIQUE (exam_id, code)
);

-- Each candidate's form, drawn when the exam opens (or when a candidate is
-- added to an open exam), so pressing Start is one cheap write.
CREATE TABLE candidate_forms (
    candidate_id  bigint PRIMARY KEY REFERENCES candidates(id),
    form_number   integer,
    form          jsonb NOT NULL,
    digest        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every item an exam can show, rendered once to safe HTML (math as MathML,
-- images inlined) when the exam opens, so Start does no rendering. Never
-- holds a key: only what a student may see.
CREATE TABLE exam_items (
    exam_id   bigint NOT NULL REFERENCES exams(id),
    item_pk   bigint NOT NULL REFERENCES bank_items(id),
    type      text NOT NULL,
    rendered  jsonb NOT NULL,
    PRIMARY KEY (exam_id, item_pk)
);

CREATE TABLE candidate_sessions (
    token_hash    bytea PRIMARY KEY,
    candidate_id  bigint NOT NULL REFERENCES candidates(id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX candidate_sessions_candidate_idx ON candidate_sessions (candidate_id);

CREATE TABLE attempts (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exam_id              bigint NOT NULL REFERENCES exams(id),
    candidate_id         bigint NOT NULL UNIQUE REFERENCES candidates(id),
    status               text NOT NULL DEFAULT 'in_progress' CHECK (status IN ('in_progress', 'submitted')),
    -- What the autosave checks a change against, per question ref: type,
    -- option aliases, statement ids and section. Fixed at start.
    layout               jsonb NOT NULL,
    started_at           timestamptz NOT NULL DEFAULT now(),
    deadline             timestamptz NOT NULL,
    -- Sections with their own time limit run one after another.
    section_index        integer NOT NULL DEFAULT 0,
    section_deadline     timestamptz,
    -- Highest sequence number such that every change up to it is stored.
    saved_seq            bigint NOT NULL DEFAULT 0,
    submitted_at         timestamptz,
    submitted_by         text CHECK (submitted_by IN ('candidate', 'deadline')),
    score                numeric,
    max_score            numeric,
    provisional          boolean,
    section_scores       jsonb,
    responses_sha256     text,
    receipt              text
);
CREATE INDEX attempts_open_idx ON attempts (deadline) WHERE status = 'in_progress';
CREATE INDEX attempts_exam_idx ON attempts (exam_id);

-- The current answer to each question of an attempt.
CREATE TABLE responses (
    attempt_id  bigint NOT NULL REFERENCES attempts(id),
    item_ref    text NOT NULL,
    value       jsonb,
    flagged     boolean NOT NULL DEFAULT false,
    -- The sequence number of the change that set value / flagged, so an
    -- older change arriving late never overwrites a newer one.
    value_seq   bigint NOT NULL DEFAULT 0,
    flag_seq    bigint NOT NULL DEFAULT 0,
    score       numeric,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt_id, item_ref)
);

-- Every change ever received and saved, in sequence order: the history.
CREATE TABLE response_history (
    attempt_id   bigint NOT NULL REFERENCES attempts(id),
    seq          bigint NOT NULL CHECK (seq > 0),
    item_ref     text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('answer', 'flag')),
    value        jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt_id, seq)
);

-- Changes refused because they came too late (after deadline + grace) or
-- for a closed section: kept, so a dispute can be settled from the record.
CREATE TABLE refused_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id   bigint NOT NULL REFERENCES attempts(id),
    reason       text NOT NULL,
    body         jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
