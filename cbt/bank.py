"""The question bank in the database: the trust store, importing signed
releases, and reading items back for the bank browser and exams.

A release enters only after itembank has verified its signature against a
key in the trust store and validated every item; the whole import is one
transaction. Item versions are immutable: the same id and version with
different content is refused, so what an exam used can always be shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cbt import uploads
from cbt.errors import Conflict, NotFound, UserError
from itembank import keys as itembank_keys
from itembank.errors import ItembankError, ProblemsError
from itembank.formats.yaml_format import parse_text, serialise_item
from itembank.model import Item

# -- the trust store -----------------------------------------------------------


def bank_error(e: ItembankError) -> UserError:
    """An itembank failure as a UserError: same stable code, same message."""
    message = e.message
    if isinstance(e, ProblemsError) and e.problems:
        shown = [str(p) for p in e.problems[:20]]
        more = len(e.problems) - len(shown)
        message += ":\n  " + "\n  ".join(shown) + (f"\n  ... and {more} more" if more > 0 else "")
    return UserError(e.code, message)


async def trust_key(conn: asyncpg.Connection, pem: bytes, name: str) -> str:
    """Add a public key to the trust store; returns its fingerprint."""
    try:
        public_key = itembank_keys.public_key_from_pem(pem, name)
    except ItembankError as e:
        raise bank_error(e) from None
    fp = itembank_keys.fingerprint(public_key)
    text = itembank_keys.public_key_pem(public_key).decode()
    await conn.execute(
        """
        INSERT INTO trusted_keys (fingerprint, name, public_key_pem) VALUES ($1, $2, $3)
        ON CONFLICT (fingerprint) DO UPDATE SET revoked_at = NULL, name = EXCLUDED.name
        """,
        fp, name, text,
    )
    return fp


async def revoke_key(conn: asyncpg.Connection, fp: str) -> None:
    done = await conn.execute(
        "UPDATE trusted_keys SET revoked_at = now() WHERE fingerprint = $1 AND revoked_at IS NULL", fp.lower(),
    )
    if done == "UPDATE 0":
        raise NotFound("unknown_key", f"no trusted key with fingerprint {fp!r}: see `cbt keys list`")


async def list_keys(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT fingerprint, name, added_at, revoked_at FROM trusted_keys ORDER BY added_at, fingerprint"
    )


async def trusted_public_keys(conn: asyncpg.Connection) -> list[Ed25519PublicKey]:
    rows = await conn.fetch("SELECT public_key_pem FROM trusted_keys WHERE revoked_at IS NULL")
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
        return (f"imported {self.name} {self.version} as release {self.release_id}: {self.items} items "
                f"({self.new_items} new versions), {self.media} media files")


def _item_row(item: Item) -> tuple:
    source = serialise_item(item)
    return (
        item.id, item.version, item.type.value, item.subject, item.grade, item.topic, item.level,
        item.points, item.lang, item.status.value, list(item.tags), item.stem, source,
        hashlib.sha256(source.encode()).hexdigest(),
    )


_ITEM_COLUMNS = ["item_id", "version", "type", "subject", "grade", "topic", "level", "points", "lang",
                 "status", "tags", "stem", "source", "content_sha256"]
_COLUMN_LIST = ", ".join(_ITEM_COLUMNS)
# Built from the constant column list above, never from input.
# A scratch table without bank_items' NOT NULL id and release columns:
_CREATE_INCOMING = (
    "CREATE TEMP TABLE incoming_items ON COMMIT DROP AS SELECT "  # noqa: S608
    + _COLUMN_LIST + " FROM bank_items WITH NO DATA"
)
_INSERT_NEW_ITEMS = (
    "WITH added AS (INSERT INTO bank_items ("  # noqa: S608
    + _COLUMN_LIST + ", first_release_id) SELECT " + _COLUMN_LIST
    + ", $1 FROM incoming_items ON CONFLICT (item_id, version) DO NOTHING RETURNING 1) SELECT count(*) FROM added"
)


async def import_release(conn: asyncpg.Connection, source: Path | bytes) -> ImportResult:
    """Verify against the trust store, validate, and store a release in one transaction."""
    trusted = await trusted_public_keys(conn)
    if not trusted:
        raise UserError("no_trusted_keys",
                        "the server trusts no signing key yet: add the signer's public key with "
                        "`cbt keys trust FILE.pub`")
    try:
        # Read (verify, parse, check every item) off the event loop: see cbt.uploads.
        release = await uploads.off_loop(uploads.load_release, source, uploads.raw_public_keys(trusted))
    except ItembankError as e:
        raise bank_error(e) from None
    manifest_sha = hashlib.sha256(release.manifest).hexdigest()
    info, summary = release.info, release.summary
    async with conn.transaction():
        existing = await conn.fetchrow(
            "SELECT id, manifest_sha256 FROM bank_releases WHERE name = $1 AND version = $2",
            info.name, info.version,
        )
        if existing is not None:
            if existing["manifest_sha256"] == manifest_sha:
                return ImportResult(existing["id"], info.name, info.version, len(release.items), 0,
                                    len(release.media), already_imported=True)
            raise Conflict(
                "release_conflict",
                f"a different release named {info.name} {info.version} is already imported: "
                "publish the changed content under a new version in bank.yaml",
            )
        release_id = await conn.fetchval(
            """
            INSERT INTO bank_releases (name, version, title, subject, description, publisher, signer,
                                       signed_at, manifest, signature, manifest_sha256, item_count)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id
            """,
            info.name, info.version, info.title, info.subject, info.description, info.publisher,
            summary.signer, datetime.fromisoformat(summary.signed_at.replace("Z", "+00:00")),
            release.manifest, release.signature, manifest_sha, len(release.items),
        )
        # Bulk path: COPY into a scratch table, then set operations, so a
        # 10,000-item release is a handful of statements, not 10,000.
        await conn.execute(_CREATE_INCOMING)
        await conn.copy_records_to_table(
            "incoming_items", records=[_item_row(i) for i in release.items], columns=_ITEM_COLUMNS,
        )
        clashes = await conn.fetch(
            """
            SELECT i.item_id, i.version FROM incoming_items i
            JOIN bank_items b USING (item_id, version)
            WHERE b.content_sha256 <> i.content_sha256
            ORDER BY i.item_id, i.version LIMIT 20
            """
        )
        if clashes:
            listed = ", ".join(f"{r['item_id']}@{r['version']}" for r in clashes)
            raise Conflict(
                "item_version_conflict",
                f"these item versions are already in the bank with different content: {listed}; "
                "an item that changed needs a new version number",
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
                "INSERT INTO media_blobs (sha256, content) VALUES ($1, $2) ON CONFLICT DO NOTHING", digest, data,
            )
            await conn.execute(
                "INSERT INTO release_media (release_id, path, sha256) VALUES ($1, $2, $3)", release_id, path, digest,
            )
    return ImportResult(release_id, info.name, info.version, len(release.items), new_items,
                        len(release.media), already_imported=False)


# -- reading -------------------------------------------------------------------


def item_from_source(source: str) -> Item:
    parsed = parse_text(source, "bank")
    if parsed.problems or len(parsed.items) != 1:
        raise RuntimeError(f"stored item does not parse: {parsed.problems}")
    return parsed.items[0].item


async def list_releases(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT r.id, r.name, r.version, r.title, r.subject, r.signer, k.name AS signer_name,
               k.revoked_at IS NOT NULL AS signer_revoked, r.signed_at, r.imported_at, r.item_count
        FROM bank_releases r JOIN trusted_keys k ON k.fingerprint = r.signer
        ORDER BY r.imported_at DESC, r.id DESC
        """
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
WHERE ($1::bigint IS NULL OR EXISTS (SELECT 1 FROM release_items ri WHERE ri.item_pk = b.id AND ri.release_id = $1))
  AND ($2 = '' OR b.subject = $2)
  AND ($3 = '' OR b.topic = $3)
  AND ($4::int IS NULL OR b.level = $4)
  AND ($5 = '' OR b.type = $5)
  AND ($6 = '' OR b.status = $6)
  AND ($7 = '' OR b.stem ILIKE '%' || $7 || '%' OR b.item_id ILIKE '%' || $7 || '%')
ORDER BY b.subject, b.topic, b.level, b.item_id, b.version
LIMIT $8
"""


async def search_items(conn: asyncpg.Connection, f: ItemFilter, limit: int = 500) -> list[asyncpg.Record]:
    # The text is matched literally: escape LIKE's wildcards.
    text = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return await conn.fetch(_SEARCH, f.release_id, f.subject, f.topic, f.level, f.type, f.status, text, limit)


async def facet_values(conn: asyncpg.Connection) -> dict[str, list]:
    """Distinct subjects and topics, for the filter menus."""
    subjects = [r[0] for r in await conn.fetch("SELECT DISTINCT subject FROM bank_items ORDER BY 1")]
    topics = [r[0] for r in await conn.fetch("SELECT DISTINCT topic FROM bank_items ORDER BY 1")]
    return {"subjects": subjects, "topics": topics}


async def get_item(conn: asyncpg.Connection, item_id: str, version: int) -> tuple[asyncpg.Record, Item]:
    row = await conn.fetchrow(
        """
        SELECT b.*, r.name AS release_name, r.version AS release_version
        FROM bank_items b JOIN bank_releases r ON r.id = b.first_release_id
        WHERE b.item_id = $1 AND b.version = $2
        """,
        item_id, version,
    )
    if row is None:
        raise NotFound("unknown_item", f"no item {item_id} version {version} in the bank")
    return row, item_from_source(row["source"])


async def item_versions(conn: asyncpg.Connection, item_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, status, content_sha256 FROM bank_items WHERE item_id = $1 ORDER BY version", item_id,
    )


async def media_for_item(conn: asyncpg.Connection, item_pk: int, path: str) -> bytes:
    """A media file as the release that first brought this item version has it."""
    content = await conn.fetchval(
        """
        SELECT m.content FROM bank_items b
        JOIN release_media rm ON rm.release_id = b.first_release_id AND rm.path = $2
        JOIN media_blobs m ON m.sha256 = rm.sha256
        WHERE b.id = $1
        """,
        item_pk, path,
    )
    if content is None:
        raise NotFound("unknown_media", f"no media file {path!r} for this item")
    return content
