-- The per-exam audit log (append-only, hash-chained), the server's own
-- signing keys and the receipts handed to candidates on submit.

-- Every event of an exam, numbered 1, 2, 3... per exam. Each row's hash is
-- SHA-256(prev_hash || canonical JSON of the row), prev_hash being the hash
-- of the row before (32 zero bytes for the first): see cbt/audit.py.
CREATE TABLE audit_events (
    exam_id     bigint NOT NULL REFERENCES exams(id),
    seq         bigint NOT NULL CHECK (seq >= 1),
    at          timestamptz NOT NULL,
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z_]{0,63}$'),
    attempt_id  bigint REFERENCES attempts(id),
    content     jsonb NOT NULL,
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (exam_id, seq)
);
CREATE INDEX audit_events_attempt_idx ON audit_events (attempt_id) WHERE attempt_id IS NOT NULL;

-- Append-only: only a superuser disabling the triggers can change history,
-- and `cbt audit verify` still finds that.
CREATE FUNCTION audit_events_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse();

-- The server's own private keys (PEM), by purpose, e.g. 'receipt'. Kept in
-- the database so every worker on every machine signs with the same key;
-- generated once (INSERT ... ON CONFLICT DO NOTHING, then read back).
CREATE TABLE server_keys (
    name         text PRIMARY KEY,
    private_pem  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The receipt issued for a submitted attempt: one per attempt, so a retried
-- submit hands back the very same receipt.
CREATE TABLE receipts (
    attempt_id  bigint PRIMARY KEY REFERENCES attempts(id),
    short_code  text NOT NULL UNIQUE,
    token       text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now()
);
