-- Organisations, staff accounts, web sessions and the sign-in limiter.

-- An education department (Sở GD&ĐT) or one of its schools. What staff
-- create belongs to their organisation; a department sees its schools'.
CREATE TABLE orgs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('department', 'school')),
    parent_id   bigint REFERENCES orgs(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Only schools hang under a department; departments are top level.
    CHECK ((kind = 'department' AND parent_id IS NULL) OR kind = 'school')
);

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,63}$'),
    display_name   text NOT NULL DEFAULT '',
    role           text NOT NULL CHECK (role IN ('admin', 'teacher', 'reviewer', 'proctor', 'board')),
    org_id         bigint NOT NULL REFERENCES orgs(id),
    password_hash  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE INDEX users_org_idx ON users (org_id);

-- Server-side sessions: the cookie holds a random token, the table only its
-- SHA-256, so a leaked database dump cannot be replayed as cookies.
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL DEFAULT now(),
    client_addr text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

-- Failed sign-ins, kept for the rate limit window (per address and per account).
CREATE TABLE login_failures (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope      text NOT NULL CHECK (scope IN ('addr', 'account')),
    key        text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_lookup_idx ON login_failures (scope, key, failed_at);
