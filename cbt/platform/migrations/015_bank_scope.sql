-- Trust and bank releases belong to organisations.
--
-- A key was trusted server-wide, and trusting it again cleared its
-- revocation, so any school's administrator could undo a department's
-- revocation; a release imported by one school was readable by every
-- other. Now a key is trusted by an organisation (covering its schools when
-- it is a department) or by the operator for the whole server, a revocation
-- is final, and a release belongs to the organisation that imported it.

-- Who trusts a key. org_id NULL is the operator's trust (`cbt keys trust`),
-- good for every organisation; trusted_by NULL is the operator too.
CREATE TABLE key_trust (
    fingerprint  text NOT NULL REFERENCES trusted_keys(fingerprint),
    org_id       bigint REFERENCES orgs(id),
    trusted_by   bigint REFERENCES users(id),
    trusted_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (fingerprint, org_id)
);

-- Who revoked a key; NULL with revoked_at set is the operator (`cbt keys
-- revoke`), the only way to revoke before this migration.
ALTER TABLE trusted_keys ADD COLUMN revoked_by bigint REFERENCES users(id);

-- Until now, the web could trust only a key kept on the server, and only an
-- administrator who could see it: one of the key's organisation or of its
-- department. The narrower of the two is kept; a department that meant its
-- schools to trust the key trusts it again on its Signing keys page. Any
-- other key can only have come from `cbt keys trust`: server-wide, as before.
INSERT INTO key_trust (fingerprint, org_id, trusted_at)
SELECT k.fingerprint, s.org_id, k.added_at
FROM trusted_keys k LEFT JOIN signing_keys s ON s.fingerprint = k.fingerprint;

-- The organisation a release belongs to: its own staff use it, a
-- department's releases are shared with its schools, and a department sees
-- its schools'. NULL: shared with every organisation on the server, which
-- only the operator chooses (`cbt bank import --all-orgs`).
ALTER TABLE bank_releases ADD COLUMN org_id bigint REFERENCES orgs(id);
CREATE INDEX bank_releases_org_idx ON bank_releases (org_id);

-- A release signed in the workspace was imported by the organisation that
-- built it. Which organisation a `cbt bank import` was for was not recorded:
-- on a server with a single organisation it can only have been that one;
-- with several, such a release stays shared with all, as it was (an
-- operator who wants otherwise re-imports under a new version with --org).
UPDATE bank_releases r SET org_id = w.org_id
FROM workspace_releases w WHERE w.bank_release_id = r.id;
UPDATE bank_releases SET org_id = (SELECT min(id) FROM orgs)
WHERE org_id IS NULL AND (SELECT count(*) FROM orgs) = 1;
