-- Lockdown and proctoring: room access codes, device binding, pause and
-- extra time, proctor decisions, integrity events.

CREATE TABLE exam_rooms (
    exam_id      bigint NOT NULL REFERENCES exams(id),
    room         text NOT NULL,
    -- Read out by the proctor in the room; short-lived, rotated at will.
    access_code  text NOT NULL,
    rotated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exam_id, room)
);

ALTER TABLE candidates
    -- A proctor may let one candidate in from outside the allowed networks.
    ADD COLUMN network_override boolean NOT NULL DEFAULT false,
    -- A proctor may admit a candidate after the late-entry cutoff.
    ADD COLUMN admitted_until timestamptz;

ALTER TABLE attempts
    -- SHA-256 of the device cookie of the browser that may write this attempt.
    ADD COLUMN device_hash bytea,
    ADD COLUMN paused_at timestamptz,
    ADD COLUMN voided boolean NOT NULL DEFAULT false,
    ADD COLUMN last_seen timestamptz,
    ADD COLUMN last_addr text;

ALTER TABLE attempts DROP CONSTRAINT attempts_submitted_by_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_submitted_by_check
    CHECK (submitted_by IN ('candidate', 'deadline', 'proctor'));

-- A second browser asking for an attempt bound to another: the proctor decides.
CREATE TABLE device_requests (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id    bigint NOT NULL REFERENCES attempts(id),
    device_hash   bytea NOT NULL,
    addr          text NOT NULL DEFAULT '',
    requested_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    UNIQUE (attempt_id, device_hash)
);

-- Leaving the page, leaving fullscreen, copy/paste attempts, a second tab.
CREATE TABLE integrity_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id  bigint NOT NULL REFERENCES attempts(id),
    kind        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX integrity_events_attempt_idx ON integrity_events (attempt_id);

-- Proctors' notes and actions on candidates (the audit chain keeps the proof).
CREATE TABLE proctor_actions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exam_id       bigint NOT NULL REFERENCES exams(id),
    candidate_id  bigint REFERENCES candidates(id),
    staff_id      bigint NOT NULL REFERENCES users(id),
    action        text NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',
    at            timestamptz NOT NULL DEFAULT now()
);
