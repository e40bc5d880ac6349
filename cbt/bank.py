"""The question bank in the database: the trust store, importing signed
releases, and reading items back for the bank browser and exams.

A release enters only after itembank has verified its signature against a
key in the trust store and validated every item; the whole import is one
transaction. Item versions are immutable: the same id and version with
different content is refused, so what an exam used can always be shown.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cbt.platform import uploads
from cbt.platform.errors import Conflict, NotFound, UserError
from itembank import keys as itembank_keys
from itembank.errors import ItembankError, ProblemsError
from itembank.formats.yaml_format import parse_text, serialise_item, serialise_set
from itembank.levels import LEGACY, LevelScheme, scheme_of
from itembank.limits import TooLarge
from itembank.model import Item, ItemSet

# -- the trust store -----------------------------------------------------------


def bank_error(e: ItembankError) -> UserError:
    """An itembank failure as a UserError: same stable code, same message, and
    the files and problems it names as details, for the reader's language."""
    if isinstance(e, TooLarge):
        return uploads.too_large(e)
    message = e.message
    shown: list[str] = []
    if isinstance(e, ProblemsError) and e.problems:
        shown = [str(p) for p in e.problems[:20]]
        more = len(e.problems) - len(shown)
        if more > 0:
            shown.append(f"... and {more} more")
        message += ":\n  " + "\n  ".join(shown)
    return UserError(e.code, message, files=", ".join(getattr(e, "files", ())[:10]), problem_lines="; ".join(shown))


# An organisation uses keys trusted by itself, by its department, or by the
# operator for the whole server (org NULL). A school's trust is its own: it
# covers neither its department nor the other schools.
_TRUSTED_FOR = """
SELECT k.public_key_pem FROM trusted_keys k
WHERE k.revoked_at IS NULL AND EXISTS (
    SELECT 1 FROM key_trust t WHERE t.fingerprint = k.fingerprint
      AND (t.org_id IS NULL OR t.org_id = $1 OR t.org_id = (SELECT parent_id FROM orgs WHERE id = $1)))
"""


def _public_key(pem: bytes, name: str) -> Ed25519PublicKey:
    try:
        return itembank_keys.public_key_from_pem(pem, name)
    except ItembankError as e:
        raise bank_error(e) from None


def key_fingerprint(pem: bytes, name: str) -> str:
    return itembank_keys.fingerprint(_public_key(pem, name))


async def trust_key(
    conn: asyncpg.Connection,
    pem: bytes,
    name: str,
    *,
    org_id: int | None = None,
    by: int | None = None,
    unrevoke: bool = False,
) -> str:
    """Trust a public key for an organisation (and its schools), or with org_id
    None for the whole server, as the operator's `cbt keys trust` does; returns
    its fingerprint.

    A revoked key stays revoked: the way back is a new key. Only the operator
    may lift a revocation, by saying so (unrevoke=True)."""
    public_key = _public_key(pem, name)
    fp = itembank_keys.fingerprint(public_key)
    text = itembank_keys.public_key_pem(public_key).decode()
    async with conn.transaction():
        # The operator names keys; an organisation's trust leaves the name as it is.
        key = await conn.fetchrow(
            """
            INSERT INTO trusted_keys (fingerprint, name, public_key_pem) VALUES ($1, $2, $3)
            ON CONFLICT (fingerprint) DO UPDATE SET name = CASE WHEN $4 THEN EXCLUDED.name ELSE trusted_keys.name END
            RETURNING revoked_at
            """,
            fp,
            name,
            text,
            org_id is None,
        )
        if key["revoked_at"] is not None:
            if not unrevoke or org_id is not None:
                way_back = (
                    " (or, if revoking it was a mistake, run cbt keys trust FILE.pub --unrevoke)"
                    if org_id is None
                    else ""
                )
                raise Conflict(
                    "key_revoked",
                    f"the key {fp} was revoked on {key['revoked_at']:%Y-%m-%d} and stays"
                    " revoked: sign with a new key (cbt keys generate, or Create a key on the Signing"
                    f" keys page) and trust that one instead{way_back}",
                    fingerprint=fp,
                )
            await conn.execute(
                "UPDATE trusted_keys SET revoked_at = NULL, revoked_by = NULL WHERE fingerprint = $1", fp
            )
        await conn.execute(
            "INSERT INTO key_trust (fingerprint, org_id, trusted_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (fingerprint, org_id) DO NOTHING",
            fp,
            org_id,
            by,
        )
    return fp


async def revoke_key(
    conn: asyncpg.Connection, fp: str, *, by: int | None = None, public_key_pem: str | None = None, name: str = ""
) -> None:
    """Revoke a key for everyone who trusts it, for good (by: the staff member;
    None: the operator). With its public key, a key nobody trusts yet is
    revoked too, so that nobody can trust it later."""
    if public_key_pem is not None:
        done = await conn.execute(
            """
            INSERT INTO trusted_keys (fingerprint, name, public_key_pem, revoked_at, revoked_by)
            VALUES ($1, $2, $3, now(), $4)
            ON CONFLICT (fingerprint) DO UPDATE SET revoked_at = now(), revoked_by = $4
            WHERE trusted_keys.revoked_at IS NULL
            """,
            fp.lower(),
            name,
            public_key_pem,
            by,
        )
    else:
        done = await conn.execute(
            "UPDATE trusted_keys SET revoked_at = now(), revoked_by = $2 WHERE fingerprint = $1 AND revoked_at IS NULL",
            fp.lower(),
            by,
        )
    if done in ("UPDATE 0", "INSERT 0 0"):
        raise NotFound("unknown_key", f"no trusted key with fingerprint {fp!r}: see `cbt keys list`", fingerprint=fp)


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every key in the trust store, who trusts it (org codes; '*' for the operator's
    server-wide trust) and who revoked it (None with revoked_at set: the operator)."""
    return await conn.fetch(
        """
        SELECT k.fingerprint, k.name, k.added_at, k.revoked_at, r.username AS revoked_by,
               array(SELECT coalesce(o.code, '*') FROM key_trust t LEFT JOIN orgs o ON o.id = t.org_id
                     WHERE t.fingerprint = k.fingerprint ORDER BY o.code NULLS FIRST) AS trusted_by
        FROM trusted_keys k LEFT JOIN users r ON r.id = k.revoked_by
        ORDER BY k.added_at, k.fingerprint
        """
    )


async def trusted_public_keys(conn: asyncpg.Connection, org_id: int | None) -> list[Ed25519PublicKey]:
    """The keys whose releases this organisation may import and verify (None: the operator's own)."""
    rows = await conn.fetch(_TRUSTED_FOR, org_id)
    return [itembank_keys.public_key_from_pem(r["public_key_pem"].encode()) for r in rows]


# -- import --------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    release_id: int
    name: str
    version: str
    items: int
    new_items: int
    media: int
    already_imported: bool

    def __str__(self) -> str:
        if self.already_imported:
            return f"{self.name} {self.version} is already imported (release {self.release_id}); nothing changed"
        return (
            f"imported {self.name} {self.version} as release {self.release_id}: {self.items} items "
            f"({self.new_items} new versions), {self.media} media files"
        )


def _item_row(item: Item, set_place: dict[str, tuple[int, int]]) -> tuple:
    """The item's bank_items columns; set_place: child id -> (its set's pk, its place in the set)."""
    source = serialise_item(item)
    set_pk, position = set_place.get(item.id, (None, None)) if item.set_id is not None else (None, None)
    return (
        item.id,
        item.version,
        item.type.value,
        item.subject,
        item.grade,
        item.topic,
        item.level,
        item.points,
        item.lang,
        item.status.value,
        list(item.tags),
        item.stem,
        source,
        hashlib.sha256(source.encode()).hexdigest(),
        set_pk,
        position,
    )


_ITEM_COLUMNS = [
    "item_id",
    "version",
    "type",
    "subject",
    "grade",
    "topic",
    "level",
    "points",
    "lang",
    "status",
    "tags",
    "stem",
    "source",
    "content_sha256",
    "set_pk",
    "set_position",
]
_COLUMN_LIST = ", ".join(_ITEM_COLUMNS)
# Built from the constant column list above, never from input.
# A scratch table without bank_items' NOT NULL id and release columns:
_CREATE_INCOMING = (
    "CREATE TEMP TABLE incoming_items ON COMMIT DROP AS SELECT "  # noqa: S608
    + _COLUMN_LIST
    + " FROM bank_items WITH NO DATA"
)
_INSERT_NEW_ITEMS = (
    "WITH added AS (INSERT INTO bank_items ("  # noqa: S608
    + _COLUMN_LIST
    + ", first_release_id) SELECT "
    + _COLUMN_LIST
    + ", $1 FROM incoming_items ON CONFLICT (item_id, version) DO NOTHING RETURNING 1) SELECT count(*) FROM added"
)


async def import_release(conn: asyncpg.Connection, source: Path | bytes, org_id: int | None = None) -> ImportResult:
    """Verify against the keys this organisation trusts, validate, and store a
    release for it in one transaction. org_id None: a release for every
    organisation, checked against the operator's server-wide trust only."""
    trusted = await trusted_public_keys(conn, org_id)
    if not trusted:
        raise UserError(
            "no_trusted_keys",
            "no signing key is trusted here yet: the operator adds the signer's public key with "
            "`cbt keys trust FILE.pub`, or an administrator trusts a key on the Signing keys page",
        )
    try:
        # Read (verify, parse, check every item) off the event loop: see cbt.platform.uploads.
        release = await uploads.off_loop(uploads.load_release, source, uploads.raw_public_keys(trusted))
    except ItembankError as e:
        raise bank_error(e) from None
    manifest_sha = hashlib.sha256(release.manifest).hexdigest()
    info, summary = release.info, release.summary
    async with conn.transaction():
        existing = await conn.fetchrow(
            "SELECT id, manifest_sha256, org_id FROM bank_releases WHERE name = $1 AND version = $2",
            info.name,
            info.version,
        )
        if existing is not None:
            if existing["org_id"] != org_id:
                # One release, one owner: importing it again does not share it.
                raise Conflict(
                    "release_conflict",
                    f"a release named {info.name} {info.version} is already in the bank for another "
                    "organisation: publish this one under a new version in bank.yaml",
                    release=f"{info.name} {info.version}",
                )
            if existing["manifest_sha256"] == manifest_sha:
                return ImportResult(
                    existing["id"],
                    info.name,
                    info.version,
                    len(release.items),
                    0,
                    len(release.media),
                    already_imported=True,
                )
            raise Conflict(
                "release_conflict",
                f"a different release named {info.name} {info.version} is already imported: "
                "publish the changed content under a new version in bank.yaml",
                release=f"{info.name} {info.version}",
            )
        release_id = await conn.fetchval(
            """
            INSERT INTO bank_releases (name, version, title, subject, description, publisher, signer,
                                       signed_at, manifest, signature, manifest_sha256, item_count, org_id,
                                       topic_names, levels)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id
            """,
            info.name,
            info.version,
            info.title,
            info.subject,
            info.description,
            info.publisher,
            summary.signer,
            datetime.fromisoformat(summary.signed_at.replace("Z", "+00:00")),
            release.manifest,
            release.signature,
            manifest_sha,
            len(release.items),
            org_id,
            json.dumps(dict(info.topics or {}), ensure_ascii=False),
            levels_json(info.levels),
        )
        set_place = await _store_sets(conn, release_id, release.sets, release.items)
        # Bulk path: COPY into a scratch table, then set operations, so a
        # 10,000-item release is a handful of statements, not 10,000.
        await conn.execute(_CREATE_INCOMING)
        await conn.copy_records_to_table(
            "incoming_items",
            records=[_item_row(i, set_place) for i in release.items],
            columns=_ITEM_COLUMNS,
        )
        clashes = await conn.fetch(
            """
            SELECT i.item_id, i.version FROM incoming_items i
            JOIN bank_items b USING (item_id, version)
            WHERE b.content_sha256 <> i.content_sha256 OR b.set_pk IS DISTINCT FROM i.set_pk
            ORDER BY i.item_id, i.version LIMIT 20
            """
        )
        if clashes:
            listed = ", ".join(f"{r['item_id']}@{r['version']}" for r in clashes)
            raise Conflict(
                "item_version_conflict",
                f"these item versions are already in the bank with different content: {listed}; "
                "an item that changed needs a new version number",
                items=listed,
            )
        new_items = await conn.fetchval(_INSERT_NEW_ITEMS, release_id)
        await conn.execute(
            """
            INSERT INTO release_items (release_id, item_pk)
            SELECT $1, b.id FROM incoming_items i JOIN bank_items b USING (item_id, version)
            """,
            release_id,
        )
        for path, data in release.media.items():
            digest = hashlib.sha256(data).hexdigest()
            await conn.execute(
                "INSERT INTO media_blobs (sha256, content) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                digest,
                data,
            )
            await conn.execute(
                "INSERT INTO release_media (release_id, path, sha256) VALUES ($1, $2, $3)",
                release_id,
                path,
                digest,
            )
    return ImportResult(
        release_id, info.name, info.version, len(release.items), new_items, len(release.media), already_imported=False
    )


def levels_json(scheme: LevelScheme) -> str | None:
    """bank_releases.levels: [[id, name], ...], or None for the legacy four."""
    if scheme == LEGACY:
        return None
    return json.dumps([[i, n] for i, n in zip(scheme.ids, scheme.names, strict=True)], ensure_ascii=False)


def scheme_from_json(text: str | None) -> LevelScheme:
    """The scheme stored by levels_json."""
    return LEGACY if text is None else scheme_of([(i, n) for i, n in json.loads(text)])


async def _store_sets(
    conn: asyncpg.Connection, release_id: int, sets: tuple[ItemSet, ...], items: tuple[Item, ...]
) -> dict[str, tuple[int, int]]:
    """Store the release's sets (a set version once, whichever release brings it)
    and say where each child goes: child id -> (set pk, place in the set)."""
    place: dict[str, tuple[int, int]] = {}
    for item_set in sets:
        children = [i for i in items if i.set_id == item_set.id]
        source = serialise_set(item_set, children)
        digest = hashlib.sha256(source.encode()).hexdigest()
        row = await conn.fetchrow(
            """
            WITH added AS (
                INSERT INTO bank_sets (set_id, version, subject, topic, shuffle, source, content_sha256,
                                       first_release_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (set_id, version) DO NOTHING
                RETURNING id, content_sha256
            )
            SELECT id, content_sha256 FROM added
            UNION ALL SELECT id, content_sha256 FROM bank_sets WHERE set_id = $1 AND version = $2
            LIMIT 1
            """,
            item_set.id,
            item_set.version,
            item_set.subject,
            item_set.topic,
            item_set.shuffle,
            source,
            digest,
            release_id,
        )
        if row["content_sha256"] != digest:
            raise Conflict(
                "set_version_conflict",
                f"the item set {item_set.key} is already in the bank with different content: "
                "a set that changed (its passage or any of its questions) needs a new version number",
                set=item_set.key,
            )
        await conn.execute("INSERT INTO release_sets (release_id, set_pk) VALUES ($1, $2)", release_id, row["id"])
        for position, child in enumerate(item_set.children):
            place[child] = (row["id"], position)
    return place


async def level_scheme(conn: asyncpg.Connection, release_ids: list[int]) -> LevelScheme:
    """The level scheme these releases share; an exam draws from releases of one scheme
    (exams.check_releases refuses a mix), so the first release's is everyone's."""
    if not release_ids:
        return LEGACY
    text = await conn.fetchval(
        "SELECT r.levels FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, position)"
        " JOIN bank_releases r ON r.id = k.id ORDER BY k.position LIMIT 1",
        list(release_ids),
    )
    return scheme_from_json(text)


# -- reading -------------------------------------------------------------------


def item_from_source(source: str) -> Item:
    parsed = parse_text(source, "bank")
    if parsed.problems or len(parsed.items) != 1:
        raise RuntimeError(f"stored item does not parse: {parsed.problems}")
    return parsed.items[0].item


# By key for each item, whatever the bank's size when a connection first
# plans it: `id = ANY($1)` gets a generic plan that scans bank_items if the
# bank was small then, and at the deadline every attempt is scored at once.
ITEM_SOURCES = """
SELECT b.id, b.source FROM unnest($1::bigint[]) AS k(id)
CROSS JOIN LATERAL (SELECT id, source FROM bank_items WHERE id = k.id OFFSET 0) b
"""


async def item_sources(conn, pks: list[int]) -> dict[int, str]:
    """The stored source of each bank item in ``pks``, by id."""
    return {r["id"]: r["source"] for r in await conn.fetch(ITEM_SOURCES, pks)}


# Who uses which release. A release belongs to the organisation that imported
# it (bank_releases.org_id); its staff use it, a department's releases are
# shared with its schools, and a department sees its schools' (as it sees
# their exams). Nothing crosses sideways between schools. A release with no
# organisation is shared with all: the operator chose so (`--all-orgs`).
_RELEASE_ORGS = "SELECT id FROM orgs WHERE id = $1 OR parent_id = $1 OR id = (SELECT parent_id FROM orgs WHERE id = $1)"


async def release_org_ids(conn: asyncpg.Connection, org_id: int) -> list[int]:
    """The organisations whose releases this one's staff and exams may use:
    accounts.visible_org_ids (itself and its schools) and its department."""
    return [r["id"] for r in await conn.fetch(_RELEASE_ORGS, org_id)]


async def list_releases(conn: asyncpg.Connection, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT r.id, r.name, r.version, r.title, r.subject, r.signer, k.name AS signer_name,
               k.revoked_at IS NOT NULL AS signer_revoked, r.signed_at, r.imported_at, r.item_count,
               o.code AS org_code
        FROM bank_releases r JOIN trusted_keys k ON k.fingerprint = r.signer LEFT JOIN orgs o ON o.id = r.org_id
        WHERE r.org_id IS NULL OR r.org_id = ANY($1::bigint[])
        ORDER BY r.imported_at DESC, r.id DESC
        """,
        org_ids,
    )


async def get_release(conn: asyncpg.Connection, release_id: int, org_ids: list[int]) -> asyncpg.Record:
    """A release these organisations may use; any other is 'not found', so that
    another school cannot even learn that it exists."""
    row = await conn.fetchrow(
        "SELECT id, name, version, title, subject, item_count, org_id FROM bank_releases"
        " WHERE id = $1 AND (org_id IS NULL OR org_id = ANY($2::bigint[]))",
        release_id,
        org_ids,
    )
    if row is None:
        raise NotFound("unknown_release", "no such bank release for your organisation: choose one from the list")
    return row


async def find_release(conn: asyncpg.Connection, name: str, version: str, org_ids: list[int]) -> asyncpg.Record | None:
    """The release NAME VERSION if these organisations may use it."""
    return await conn.fetchrow(
        "SELECT id, name, version, title, subject, item_count, org_id FROM bank_releases"
        " WHERE name = $1 AND version = $2 AND (org_id IS NULL OR org_id = ANY($3::bigint[]))",
        name,
        version,
        org_ids,
    )


@dataclass(frozen=True)
class ItemFilter:
    release_id: int | None = None
    subject: str = ""
    topic: str = ""
    level: int | None = None
    type: str = ""
    status: str = ""
    text: str = ""


_SEARCH = """
SELECT b.id, b.item_id, b.version, b.type, b.subject, b.grade, b.topic, b.level, b.points, b.lang,
       b.status, b.tags, left(b.stem, 160) AS stem_start
FROM bank_items b
WHERE ($2 = '' OR b.subject = $2)
  AND ($3 = '' OR b.topic = $3)
  AND ($4::int IS NULL OR b.level = $4)
  AND ($5 = '' OR b.type = $5)
  AND ($6 = '' OR b.status = $6)
  AND ($7 = '' OR b.stem ILIKE '%' || $7 || '%' OR b.item_id ILIKE '%' || $7 || '%')
  -- Readable through a release these organisations may use ($9), the filtered one if any ($1).
  AND EXISTS (SELECT 1 FROM release_items ri JOIN bank_releases r ON r.id = ri.release_id
              WHERE ri.item_pk = b.id AND (r.org_id IS NULL OR r.org_id = ANY($9::bigint[]))
                AND ($1::bigint IS NULL OR ri.release_id = $1))
ORDER BY b.subject, b.topic, b.level, b.item_id, b.version
LIMIT $8
"""


async def search_items(
    conn: asyncpg.Connection, f: ItemFilter, org_ids: list[int], limit: int = 500
) -> list[asyncpg.Record]:
    # The text is matched literally: escape LIKE's wildcards.
    text = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return await conn.fetch(_SEARCH, f.release_id, f.subject, f.topic, f.level, f.type, f.status, text, limit, org_ids)


async def facet_values(conn: asyncpg.Connection, org_ids: list[int]) -> dict[str, list]:
    """Distinct subjects and topics of the items these organisations may read, for
    the filter menus, and what their releases call the topics (oldest release first)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT b.subject, b.topic FROM bank_items b
        JOIN release_items ri ON ri.item_pk = b.id JOIN bank_releases r ON r.id = ri.release_id
        WHERE r.org_id IS NULL OR r.org_id = ANY($1::bigint[])
        """,
        org_ids,
    )
    named = await conn.fetch(
        "SELECT r.topic_names FROM bank_releases r WHERE r.org_id IS NULL OR r.org_id = ANY($1::bigint[]) ORDER BY id",
        org_ids,
    )
    return {
        "subjects": sorted({r["subject"] for r in rows}),
        "topics": sorted({r["topic"] for r in rows}),
        "topic_names": _first_names(named),
    }


async def get_item(
    conn: asyncpg.Connection, item_id: str, version: int, org_ids: list[int]
) -> tuple[asyncpg.Record, Item]:
    """An item version as these organisations may read it, with the releases they
    may use that hold it (releases: [(id, 'name version')], oldest first); any
    other is 'not found', whether it exists or not."""
    row = await conn.fetchrow(
        """
        SELECT b.*, array_agg(r.id ORDER BY r.id) AS release_ids,
               array_agg(r.name || ' ' || r.version ORDER BY r.id) AS release_names
        FROM bank_items b JOIN release_items ri ON ri.item_pk = b.id JOIN bank_releases r ON r.id = ri.release_id
        WHERE b.item_id = $1 AND b.version = $2 AND (r.org_id IS NULL OR r.org_id = ANY($3::bigint[]))
        GROUP BY b.id
        """,
        item_id,
        version,
        org_ids,
    )
    if row is None:
        raise NotFound("unknown_item", f"no item {item_id} version {version} in the bank of your organisation")
    return row, item_from_source(row["source"])


async def item_versions(conn: asyncpg.Connection, item_id: str, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT b.version, b.status, b.content_sha256 FROM bank_items b
        WHERE b.item_id = $1 AND EXISTS (
            SELECT 1 FROM release_items ri JOIN bank_releases r ON r.id = ri.release_id
            WHERE ri.item_pk = b.id AND (r.org_id IS NULL OR r.org_id = ANY($2::bigint[])))
        ORDER BY b.version
        """,
        item_id,
        org_ids,
    )


async def media_for_item(conn: asyncpg.Connection, row: asyncpg.Record, path: str) -> bytes:
    """A media file of an item (a row from get_item), as the first release that
    brought this version has it, or else the oldest of the reader's releases that holds it."""
    content = await conn.fetchval(
        """
        SELECT m.content FROM release_media rm JOIN media_blobs m ON m.sha256 = rm.sha256
        WHERE rm.release_id = ANY($1::bigint[]) AND rm.path = $2
        ORDER BY rm.release_id = $3 DESC, rm.release_id LIMIT 1
        """,
        list(row["release_ids"]),
        path,
        row["first_release_id"],
    )
    if content is None:
        raise NotFound("unknown_media", f"no media file {path!r} for this item", path=path)
    return content


async def topic_names(conn, release_ids: list[int]) -> dict[str, str]:
    """What the releases call their topics, the first release naming a topic
    winning; a topic none of them names is left out (pages show its code)."""
    return _first_names(
        await conn.fetch(
            "SELECT r.topic_names FROM unnest($1::bigint[]) WITH ORDINALITY AS k(id, position) "
            "JOIN bank_releases r ON r.id = k.id ORDER BY k.position",
            release_ids,
        )
    )


def _first_names(rows) -> dict[str, str]:
    """Rows of bank_releases.topic_names, in order: each topic by the first name given it."""
    names: dict[str, str] = {}
    for r in rows:
        for code, name in json.loads(r["topic_names"]).items():
            names.setdefault(code, name)
    return names


# -- item sets in the browser ----------------------------------------------------


def set_with_children(source: str) -> tuple[ItemSet, tuple[Item, ...]]:
    """A stored set (bank_sets.source) and its children, in its order."""
    parsed = parse_text(source, "bank")
    if parsed.problems or len(parsed.sets) != 1:
        raise RuntimeError(f"stored item set does not parse: {parsed.problems}")
    return parsed.sets[0].set, tuple(s.item for s in parsed.items)


async def get_set(
    conn: asyncpg.Connection, set_id: str, version: int, org_ids: list[int]
) -> tuple[asyncpg.Record, ItemSet, tuple[Item, ...]]:
    """A set version as these organisations may read it, with the releases they may
    use that hold it (as get_item gives an item's) and its children; any other is
    'not found', whether it exists or not."""
    row = await conn.fetchrow(
        """
        SELECT s.*, array_agg(r.id ORDER BY r.id) AS release_ids,
               array_agg(r.name || ' ' || r.version ORDER BY r.id) AS release_names,
               array(SELECT b.id FROM bank_items b WHERE b.set_pk = s.id ORDER BY b.set_position) AS child_pks
        FROM bank_sets s JOIN release_sets rs ON rs.set_pk = s.id JOIN bank_releases r ON r.id = rs.release_id
        WHERE s.set_id = $1 AND s.version = $2 AND (r.org_id IS NULL OR r.org_id = ANY($3::bigint[]))
        GROUP BY s.id
        """,
        set_id,
        version,
        org_ids,
    )
    if row is None:
        raise NotFound("unknown_item", f"no item {set_id} version {version} in the bank of your organisation")
    item_set, children = set_with_children(row["source"])
    return row, item_set, children


async def set_versions(conn: asyncpg.Connection, set_id: str, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT s.version, s.content_sha256 FROM bank_sets s
        WHERE s.set_id = $1 AND EXISTS (
            SELECT 1 FROM release_sets rs JOIN bank_releases r ON r.id = rs.release_id
            WHERE rs.set_pk = s.id AND (r.org_id IS NULL OR r.org_id = ANY($2::bigint[])))
        ORDER BY s.version
        """,
        set_id,
        org_ids,
    )


async def item_places(conn: asyncpg.Connection, pks: list[int]) -> dict[int, asyncpg.Record]:
    """For bank items by id: the set each child is in (set_id, set_version, its
    place from 0, how many the set has; NULL for an item in no set) and the level
    scheme of the release that brought it (bank_releases.levels)."""
    rows = await conn.fetch(
        """
        SELECT b.id, s.set_id, s.version AS set_version, b.set_position,
               (SELECT count(*) FROM bank_items c WHERE c.set_pk = b.set_pk) AS set_size, r.levels
        FROM unnest($1::bigint[]) AS k(id)
        CROSS JOIN LATERAL (SELECT * FROM bank_items WHERE id = k.id OFFSET 0) b
        JOIN bank_releases r ON r.id = b.first_release_id
        LEFT JOIN bank_sets s ON s.id = b.set_pk
        """,
        pks,
    )
    return {r["id"]: r for r in rows}


async def release_schemes(conn: asyncpg.Connection, org_ids: list[int]) -> list[LevelScheme]:
    """The distinct level schemes of the releases these organisations may use, legacy first."""
    rows = await conn.fetch(
        "SELECT DISTINCT r.levels::text AS levels FROM bank_releases r"
        " WHERE r.org_id IS NULL OR r.org_id = ANY($1::bigint[])",
        org_ids,
    )
    return sorted({scheme_from_json(r["levels"]) for r in rows}, key=lambda s: s != LEGACY)
