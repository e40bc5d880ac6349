"""Releases built from approved workspace items, signed offline or on the
server, and imported into the bank.

A release is laid out exactly as `cbt bank sign` lays out a folder, and its
unsigned manifest (every file's SHA-256, with signer and time left empty) is
fixed when it is built. A signature is accepted only if the manifest it
covers equals that stored manifest in everything but who signed and when, so
the bank receives exactly the items that were chosen, and nothing else. The
signed release then goes through cbt.bank.import_release, the same path as
`cbt bank import`, in the same transaction that records the signature.

An item set chosen for a release comes whole: its passage and every child,
in one file of its own. The release says in its bank.yaml the level scheme
its organisation's workspace writes at (cbt.authoring.level_scheme), so
its items' levels mean in the bank what they meant in the editor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cbt import bank
from cbt import subjects as subject_list
from cbt.platform import uploads
from cbt.platform.errors import Conflict, NotFound, UserError
from itembank import keys as itembank_keys
from itembank import package
from itembank.archive import MANIFEST, SIGNATURE, ArchiveLimits, MemoryFiles, ZipFiles
from itembank.errors import ItembankError, Problem, ProblemsError, VerifyError
from itembank.formats.imported import ImportDefaults
from itembank.formats.yaml_format import parse_text, serialise_bank_info, serialise_item, serialise_items
from itembank.levels import LEGACY, LevelScheme
from itembank.limits import TooLarge, check_zip
from itembank.model import BankInfo, Item, ItemSet, Status
from itembank.validate import check_items, check_release

# Versions become part of download file names, so they follow the same
# rule as release names (bank.yaml's own check covers the name).
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MIN_PASSPHRASE = 10
MAX_KEY_NAME = 100

# The verification states the release page shows.
UNSIGNED, VERIFIED, INVALID, REVOKED = "unsigned", "verified", "invalid", "revoked"


@dataclass(frozen=True)
class Build:
    name: str
    version: str
    title: str
    subject: str
    draft_pks: tuple[int, ...]
    # The scheme the items were written at: the workspace's of the organisation building it.
    levels: LevelScheme = LEGACY


# -- choosing items -------------------------------------------------------------

# A set is offered whole, by its passage; it matches a level when one of its children does.
_APPROVED = """
SELECT d.id, d.item_id, d.version, d.type, d.subject, d.grade, d.topic, d.level, d.points, left(d.stem, 160) AS stem,
       array(SELECT k.child_id FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY k.position) AS children
FROM draft_items d
WHERE d.state = 'approved' AND d.org_id = ANY($1::bigint[])
  AND ($2 = '' OR d.subject = $2) AND ($3 = '' OR d.topic = $3)
  AND ($4::int IS NULL OR d.level = $4
       OR EXISTS (SELECT 1 FROM draft_set_children k WHERE k.draft_pk = d.id AND k.level = $4))
ORDER BY d.subject, d.topic, d.level NULLS FIRST, d.item_id, d.version
LIMIT 2000
"""


async def approved_items(
    conn: asyncpg.Connection, org_ids: list[int], subject: str = "", topic: str = "", level: int | None = None
) -> list[asyncpg.Record]:
    return await conn.fetch(_APPROVED, org_ids, subject, topic, level)


async def approved_facets(conn: asyncpg.Connection, org_ids: list[int]) -> dict[str, list[str]]:
    rows = await conn.fetch(
        "SELECT DISTINCT subject, topic FROM draft_items WHERE state = 'approved' AND org_id = ANY($1::bigint[])",
        org_ids,
    )
    return {"subjects": sorted({r["subject"] for r in rows}), "topics": sorted({r["topic"] for r in rows})}


# -- building -------------------------------------------------------------------


def _itembank_error(e: ItembankError) -> UserError:
    return bank.bank_error(e)


def _check_build(b: Build) -> None:
    if not b.draft_pks:
        raise UserError("no_items_chosen", "choose at least one approved item for the release")
    if not _VERSION.fullmatch(b.version):
        raise UserError(
            "bad_release_version",
            f"version '{b.version}': write it like 2025.1, with letters, digits, . _ and - only",
            version=b.version,
        )
    if len(b.title) > 200:
        raise UserError("bad_release_title", "the title is too long: keep it under 200 characters")


async def _chosen_items(conn: asyncpg.Connection, org_ids: list[int], draft_pks: tuple[int, ...]) -> list:
    rows = await conn.fetch(
        "SELECT id, item_id, version, type, state, source FROM draft_items WHERE id = ANY($1::bigint[])"
        " AND org_id = ANY($2::bigint[]) ORDER BY item_id, version",
        list(draft_pks),
        org_ids,
    )
    found = {r["id"] for r in rows}
    unknown = [pk for pk in draft_pks if pk not in found]
    if unknown:
        raise NotFound(
            "unknown_items",
            f"items {', '.join(map(str, unknown[:10]))} do not exist in your school; reload the page and choose again",
        )
    waiting = [f"{r['item_id']}@{r['version']} ({r['state']})" for r in rows if r["state"] != "approved"]
    if waiting:
        raise UserError(
            "not_approved",
            "only approved items may enter a release; these are not: "
            + ", ".join(waiting[:10])
            + ("..." if len(waiting) > 10 else ""),
        )
    return rows


def _content(row) -> tuple[list[Item], ItemSet | None]:
    """A chosen row's items, approved: the item, or a set's children and the set."""
    try:
        if row["type"] == "set":
            parsed = parse_text(row["source"], "draft")
            if parsed.problems or len(parsed.sets) != 1:
                raise RuntimeError(f"stored item set does not parse: {parsed.problems}")
            item_set = dataclasses.replace(parsed.sets[0].set, status=Status.APPROVED)
            return [dataclasses.replace(s.item, status=Status.APPROVED) for s in parsed.items], item_set
        return [dataclasses.replace(bank.item_from_source(row["source"]), status=Status.APPROVED)], None
    except RuntimeError:
        raise UserError(
            "bad_item_source",
            f"item {row['item_id']}@{row['version']} cannot be read:"
            " open it in the editor, fix it and have it approved again",
            item=f"{row['item_id']}@{row['version']}",
        ) from None


async def _draft_media(conn: asyncpg.Connection, draft_pks: list[int]) -> dict[str, bytes]:
    rows = await conn.fetch(
        "SELECT m.path, b.content FROM draft_media m JOIN media_blobs b ON b.sha256 = m.sha256"
        " WHERE m.draft_pk = ANY($1::bigint[]) ORDER BY m.path",
        draft_pks,
    )
    return {r["path"]: bytes(r["content"]) for r in rows}


def release_files(
    info: BankInfo, items: list[Item], media: Mapping[str, bytes], sets: list[ItemSet] | tuple = ()
) -> dict[str, bytes]:
    """The files of the release folder: bank.yaml, one YAML file per item and per
    set (the set with its children, which `items` holds too, with ``set_id``), media."""
    given = {(s.id, s.version) for s in sets}
    alone = [i.key for i in items if i.set_id is not None and (i.set_id, i.version) not in given]
    if alone:  # a question never leaves its passage behind
        raise ValueError(f"items {', '.join(alone)} are questions of sets that were not given")
    files = {"bank.yaml": serialise_bank_info(info).encode()}
    for item in items:
        if item.set_id is None:
            files[f"items/{item.id}.v{item.version}.yaml"] = serialise_item(item).encode()
    for item_set in sets:
        children = [i for i in items if (i.set_id, i.version) == (item_set.id, item_set.version)]
        files[f"items/{item_set.id}.v{item_set.version}.yaml"] = serialise_items(children, [item_set]).encode()
    files.update(media)
    return files


async def create(conn: asyncpg.Connection, user, org_ids: list[int], b: Build) -> int:
    """Build the unsigned release from approved items and store it; returns its id."""
    _check_build(b)
    if b.subject:  # one of the organisation's subjects, as its code
        b = dataclasses.replace(b, subject=await subject_list.resolve(conn, user.org_id, b.subject))
    info = BankInfo(
        name=b.name,
        version=b.version,
        title=b.title or None,
        subject=b.subject or None,
        publisher=user.org_code,
        levels=b.levels,
    )
    async with conn.transaction():
        rows = await _chosen_items(conn, org_ids, b.draft_pks)
        # The workspace state is what approves an item; the YAML says so too
        # inside the release, because `cbt bank sign` refuses anything else.
        items: list[Item] = []
        sets: list[ItemSet] = []
        for r in rows:
            content, item_set = _content(r)
            items += content
            if item_set is not None:
                sets.append(item_set)
        # Each id once, a set's and its children's among them: their files are named by id.
        ids = [item.id for item in items] + [s.id for s in sets]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise UserError(
                "item_twice",
                f"choose one version of each item; more than one of: {', '.join(twice)}",
                items=", ".join(twice),
            )
        files = release_files(info, items, await _draft_media(conn, [r["id"] for r in rows]), sets)
        memory = MemoryFiles(files, "release")
        check = check_release(memory)
        if check.problems or check.info is None:
            raise _itembank_error(ProblemsError("invalid-release", "the release cannot be built", check.problems))
        manifest = package.build_manifest(memory, check.info, len(check.items), None).to_bytes()
        if await conn.fetchval("SELECT 1 FROM bank_releases WHERE name = $1 AND version = $2", b.name, b.version):
            raise Conflict("release_exists", f"{b.name} {b.version} is already in the bank: choose a new version")
        try:
            release_id = await conn.fetchval(
                """
                INSERT INTO workspace_releases (org_id, name, version, title, subject, created_by, package, manifest)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id
                """,
                user.org_id,
                b.name,
                b.version,
                b.title,
                b.subject,
                user.id,
                package.pack_bytes(files),
                manifest,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(
                "release_exists", f"a release named {b.name} {b.version} already exists: choose a new version"
            ) from None
        await conn.executemany(
            "INSERT INTO workspace_release_items (release_id, draft_pk) VALUES ($1, $2)",
            [(release_id, r["id"]) for r in rows],
        )
    return release_id


# -- item files uploaded to the workspace ---------------------------------------


@dataclass(frozen=True)
class ReadSet:
    """A set of an uploaded item file: the set, its children in order, and where each was written."""

    set: ItemSet
    children: tuple[Item, ...]
    where: str
    child_wheres: tuple[str, ...]


def read_item_file(text: str, filename: str, levels: LevelScheme) -> list[tuple[Item, str] | ReadSet]:
    """What an uploaded YAML file holds, in its order: each lone item with where it
    was written, and each set whole; read at the workspace's level scheme. Or
    import_failed naming every problem by file:line, sets and children included.

    Runs in the reading process (cbt.platform.uploads.off_loop): kept here, as
    light to import as read_signed_upload, rather than in cbt.authoring.
    Images are uploaded into the workspace afterwards, so they are not looked for.
    """
    result = parse_text(text, filename, levels=levels)
    problems = result.problems + check_items(result.items, None, levels=levels, sets=result.sets)
    if problems:
        raise uploads.import_failed(sorted(problems, key=lambda p: p.line or 0))
    sets = {(s.set.id, s.set.version): s for s in result.sets}
    entries: list[tuple[Item, str] | ReadSet] = []
    for source in result.items:
        item = source.item
        if item.set_id is None:
            entries.append((item, f"{filename}:{source.line}"))
            continue
        key = (item.set_id, item.version)
        if key in sets:  # the set's first child: the set goes here, whole
            source_set = sets.pop(key)
            children = [s for s in result.items if (s.item.set_id, s.item.version) == key]
            entries.append(
                ReadSet(
                    source_set.set,
                    tuple(c.item for c in children),
                    f"{filename}:{source_set.line}",
                    tuple(f"{filename}:{c.line}" for c in children),
                )
            )
    return entries


@dataclass
class ForeignFile:
    """A file of another tool's questions as the reading process read it: what
    the workspace's import previews (see cbt.authoring.preview_foreign)."""

    kind: str | None  # how teachers know the file's kind ("GIFT"); None when no reader knows it
    items: list[tuple[Item, str, dict]]  # each draft, where it was written ("de.gift:12"), its student view
    # Each set (QTI's passages): the set, where it was written, its passage as students see it,
    # and its children as `items` gives them (children are not in `items`).
    sets: list[tuple[ItemSet, str, str, list[tuple[Item, str, dict]]]]
    media: dict[str, bytes]  # the drafts' pictures by the paths they name
    problems: list[Problem]  # the first uploads.MAX_LISTED of them
    problem_count: int
    notes: list[Problem]  # likewise
    note_count: int
    left_out: int  # places in the file whose question gave no item


def read_foreign_file(data: bytes, filename: str, defaults: ImportDefaults, levels: LevelScheme) -> ForeignFile:
    """A foreign file's drafts (each with its student view), problems and notes
    (itembank.formats.foreign); TooLarge past the readers' bounds or
    uploads.FOREIGN_MAX_QUESTIONS.

    Runs in the reading process, views included: rendering a thousand
    questions' Markdown and math takes about a second, which the worker's event
    loop must not spend.
    """
    from cbt.exams import passage_view, student_view
    from itembank.formats.foreign import read_foreign

    reader, result = read_foreign(data, filename, defaults, levels)
    if len(result.items) > uploads.FOREIGN_MAX_QUESTIONS:
        raise TooLarge(
            f"{filename} holds {len(result.items):,} questions, more than the {uploads.FOREIGN_MAX_QUESTIONS:,}"
            " one import takes: split it into several files",
            str(uploads.FOREIGN_MAX_QUESTIONS),
        )
    kept = {(s.file, s.line) for s in result.items}
    # A problem at a kept item's place leaves its item in (a picture to add by hand).
    left_out = {(p.file, p.line) for p in result.problems if (p.file, p.line) not in kept}

    def viewed(s) -> tuple[Item, str, dict]:
        return s.item, f"{s.file}:{s.line}", student_view(s.item, result.media)

    return ForeignFile(
        kind=reader.name if reader is not None else None,
        items=[viewed(s) for s in result.items if not s.item.set_id],
        sets=[
            (
                s.set,
                f"{s.file}:{s.line}",
                passage_view(s.set, result.media),
                [viewed(c) for c in result.items if c.item.set_id == s.set.id],
            )
            for s in result.sets
        ],
        media=result.media,
        problems=result.problems[: uploads.MAX_LISTED],
        problem_count=len(result.problems),
        notes=result.notes[: uploads.MAX_LISTED],
        note_count=len(result.notes),
        left_out=len(left_out),
    )


# -- reading --------------------------------------------------------------------

_RELEASE = """
SELECT w.id, w.org_id, o.code AS org_code, w.name, w.version, w.title, w.subject, w.created_at, w.package,
       w.manifest, w.signature, w.signer, w.signed_at, w.bank_release_id, u.username AS created_by_name,
       k.name AS signer_name, k.revoked_at AS signer_revoked_at
FROM workspace_releases w
JOIN orgs o ON o.id = w.org_id
JOIN users u ON u.id = w.created_by
LEFT JOIN trusted_keys k ON k.fingerprint = w.signer
WHERE w.id = $1 AND w.org_id = ANY($2::bigint[])
"""


async def get(conn: asyncpg.Connection, release_id: int, org_ids: list[int]) -> asyncpg.Record:
    """A release of one of these organisations; any other is 'not found', so
    that another school cannot even learn that it exists."""
    row = await conn.fetchrow(_RELEASE, release_id, org_ids)
    if row is None:
        raise NotFound("unknown_release", "no such release in your school: choose one from the list of releases")
    return row


async def list_for(conn: asyncpg.Connection, org_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT w.id, w.name, w.version, w.title, w.subject, w.created_at, w.signer, w.signed_at,
               w.bank_release_id,
               -- Items as the bank counts them: a set's children, not the set.
               (SELECT count(*) FROM workspace_release_items i JOIN draft_items d ON d.id = i.draft_pk
                LEFT JOIN draft_set_children k ON k.draft_pk = d.id
                WHERE i.release_id = w.id AND (d.type <> 'set' OR k.draft_pk IS NOT NULL)) AS item_count
        FROM workspace_releases w WHERE w.org_id = ANY($1::bigint[])
        ORDER BY w.created_at DESC, w.id DESC
        """,
        org_ids,
    )


async def items_of(conn: asyncpg.Connection, release_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT d.id, d.item_id, d.version, d.type, d.subject, d.topic, d.level, d.points, left(d.stem, 160) AS stem,
               array(SELECT k.child_id FROM draft_set_children k WHERE k.draft_pk = d.id ORDER BY k.position)
                 AS children
        FROM workspace_release_items i JOIN draft_items d ON d.id = i.draft_pk
        WHERE i.release_id = $1 ORDER BY d.item_id, d.version
        """,
        release_id,
    )


def unsigned_files(row) -> dict[str, bytes]:
    files = ZipFiles(bytes(row["package"]), "stored release")
    return {name: files.read(name) for name in files.names()}


def signed_package(row) -> bytes:
    """The .cbtbank of a signed release, as `cbt bank pack` makes it."""
    if row["signature"] is None:
        raise UserError("not_signed", "the release is not signed yet: sign it first, then download it", status=409)
    files = unsigned_files(row)
    files[MANIFEST] = bytes(row["manifest"])
    files[SIGNATURE] = bytes(row["signature"])
    return package.pack_bytes(files)


async def verification(conn: asyncpg.Connection, row) -> tuple[str, str]:
    """Verify the stored signed release again against today's trust store."""
    if row["signature"] is None:
        return UNSIGNED, ""
    try:
        # Against what the release's own organisation trusts: another school's trust does not count.
        package.verify(signed_package(row), await bank.trusted_public_keys(conn, row["org_id"]))
    except VerifyError as e:
        if e.code == "untrusted-signer" and row["signer_revoked_at"] is not None:
            return REVOKED, e.message
        return INVALID, e.message
    return VERIFIED, ""


# -- signing --------------------------------------------------------------------


def _manifest_without_signer(manifest_bytes: bytes) -> bytes:
    """The signed manifest with who and when taken out, to compare with the stored one."""
    doc = json.loads(manifest_bytes.decode("utf-8"))
    return package.Manifest(
        name=doc["release"]["name"],
        version=doc["release"]["version"],
        files=doc["files"],
        item_count=doc["item_count"],
        signer="",
        signed_at="",
    ).to_bytes()


async def _lock_unsigned(conn: asyncpg.Connection, release_id: int, org_ids: list[int]) -> asyncpg.Record:
    # Two signers at once: the second waits here, then sees the first's signature.
    await conn.execute(
        "SELECT 1 FROM workspace_releases WHERE id = $1 AND org_id = ANY($2::bigint[]) FOR UPDATE", release_id, org_ids
    )
    row = await get(conn, release_id, org_ids)
    if row["signature"] is not None:
        raise Conflict(
            "already_signed",
            f"{row['name']} {row['version']} is already signed and in the bank; build a new version to change it",
        )
    return row


async def _accept(conn: asyncpg.Connection, row, manifest_bytes: bytes, signature: bytes) -> bank.ImportResult:
    """Check the signature against the stored manifest and the trust store, then import."""
    await _require_trusted(conn, manifest_bytes, row["org_id"])
    files = unsigned_files(row)
    files[MANIFEST] = manifest_bytes
    files[SIGNATURE] = signature
    signed = package.pack_bytes(files)
    # Verifies (the keys its organisation trusts, the signature, every file's hash),
    # and the release belongs to the organisation that built it.
    result = await bank.import_release(conn, signed, row["org_id"])
    # Verified, so the manifest is well formed; it must be the one built here.
    if _manifest_without_signer(manifest_bytes) != bytes(row["manifest"]):
        raise UserError(
            "other_manifest",
            "the signature is over a different manifest than the one built for"
            " this release: sign the unsigned download of this very release",
        )
    signer = json.loads(manifest_bytes)["signer"]
    signed_at = json.loads(manifest_bytes)["signed_at"]
    await conn.execute(
        """
        UPDATE workspace_releases SET manifest = $2, signature = $3, signer = $4, signed_at = $5, bank_release_id = $6
        WHERE id = $1 AND signature IS NULL
        """,
        row["id"],
        manifest_bytes,
        signature,
        signer,
        datetime.fromisoformat(signed_at.replace("Z", "+00:00")),
        result.release_id,
    )
    return result


async def _require_trusted(conn: asyncpg.Connection, manifest_bytes: bytes, org_id: int) -> None:
    """Say plainly, for the web, that the signer's key needs trusting first."""
    try:
        signer = json.loads(manifest_bytes)["signer"]
    except (ValueError, TypeError, KeyError):
        return  # a damaged manifest: verification names the problem
    if not isinstance(signer, str):
        return
    state = await conn.fetchrow(
        """
        SELECT k.revoked_at, EXISTS (
            SELECT 1 FROM key_trust t WHERE t.fingerprint = k.fingerprint
              AND (t.org_id IS NULL OR t.org_id = $2 OR t.org_id = (SELECT parent_id FROM orgs WHERE id = $2))
        ) AS trusted
        FROM trusted_keys k WHERE k.fingerprint = $1
        """,
        signer,
        org_id,
    )
    if state is not None and state["revoked_at"] is not None:
        raise UserError(
            "untrusted-signer",
            f"the release is signed with key {signer}, which was revoked: sign it"
            " with another key, one that your school or its department trusts",
        )
    if state is None or not state["trusted"]:
        raise UserError(
            "untrusted-signer",
            f"the release is signed with key {signer}, which is not trusted by your"
            " school or its department: an administrator trusts a key on the Signing keys page (or the"
            " operator with cbt keys trust FILE.pub) only if it belongs to the subject group or the"
            " exam board",
        )


# What a signed .cbtbank uploaded to the workspace may hold; the release it
# must match was built here, so anything much bigger is not it.
UPLOAD_ARCHIVE = ArchiveLimits(max_entries=20_000, max_entry_bytes=16 * 1024 * 1024, max_total_bytes=256 * 1024 * 1024)


def read_signed_upload(upload: bytes) -> tuple[dict[str, str], bytes, bytes]:
    """(SHA-256 of each file, MANIFEST.json, MANIFEST.sig) of an uploaded signed release.

    Runs in the reading process (cbt.platform.uploads): only the hashes come back,
    not what the files unpack to.
    """
    label = "uploaded release"
    try:
        check_zip(upload, label, UPLOAD_ARCHIVE)
        files = ZipFiles(upload, label, UPLOAD_ARCHIVE)
        names = files.names()
        if MANIFEST not in names or SIGNATURE not in names:
            raise UserError(
                "upload_unsigned",
                "the uploaded file holds no MANIFEST.json and MANIFEST.sig:"
                " run cbt bank sign on the folder, then cbt bank pack, and upload the .cbtbank",
            )
        hashes = {
            name: hashlib.sha256(files.read(name)).hexdigest() for name in names if name not in (MANIFEST, SIGNATURE)
        }
        return hashes, files.read(MANIFEST), files.read(SIGNATURE)
    except TooLarge:
        raise
    except ItembankError as e:
        raise _itembank_error(e) from None


def _upload_parts(
    upload: tuple[dict[str, str], bytes, bytes] | None,
    manifest: bytes | None,
    signature: bytes | None,
    built: Mapping[str, bytes],
) -> tuple[bytes, bytes]:
    """MANIFEST.json and MANIFEST.sig from a signed .cbtbank (as read_signed_upload gives it) or two files."""
    if upload:
        hashes, manifest, signature = upload
        built_hashes = {name: hashlib.sha256(data).hexdigest() for name, data in built.items()}
        changed = sorted(n for n in set(hashes) | set(built_hashes) if hashes.get(n) != built_hashes.get(n))
        if changed:
            raise UserError(
                "upload_changed",
                "the uploaded release is not the one built here; these files differ: "
                + ", ".join(changed[:10])
                + ". Sign the unsigned download of this release unchanged",
                files=", ".join(changed[:10]),
            )
        return manifest, signature
    if manifest and signature:
        return manifest, signature
    raise UserError(
        "no_signature", "upload the signed .cbtbank, or both MANIFEST.json and MANIFEST.sig from the signed folder"
    )


async def accept_upload(
    conn: asyncpg.Connection,
    release_id: int,
    org_ids: list[int],
    *,
    upload: bytes | None = None,
    manifest: bytes | None = None,
    signature: bytes | None = None,
) -> bank.ImportResult:
    await get(conn, release_id, org_ids)  # another school's release is not even read
    parts = await uploads.off_loop(read_signed_upload, upload) if upload else None
    async with conn.transaction():
        row = await _lock_unsigned(conn, release_id, org_ids)
        manifest_bytes, signature_bytes = _upload_parts(parts, manifest, signature, unsigned_files(row))
        return await _accept(conn, row, manifest_bytes, signature_bytes)


async def sign_on_server(
    conn: asyncpg.Connection,
    release_id: int,
    org_ids: list[int],
    fp: str,
    passphrase: str,
    *,
    key_org_ids: list[int] | None = None,
) -> bank.ImportResult:
    """Sign a release of `org_ids` with a key kept on the server, of `key_org_ids`
    (default: the same organisations; see signing_key_orgs), and import it."""
    async with conn.transaction():
        row = await _lock_unsigned(conn, release_id, org_ids)
        key_row = await _signing_key(conn, fp, org_ids if key_org_ids is None else key_org_ids)
        private_key = unlock(bytes(key_row["private_key_pem"]), passphrase)
        files = unsigned_files(row)
        memory = MemoryFiles(files, "release")
        stored = json.loads(bytes(row["manifest"]))
        info = BankInfo(name=stored["release"]["name"], version=stored["release"]["version"])
        manifest = package.build_manifest(memory, info, stored["item_count"], private_key)
        data, signature = package.sign_manifest(manifest, private_key)
        return await _accept(conn, row, data, signature)


# -- keys kept on the server ----------------------------------------------------


async def signing_key_orgs(conn: asyncpg.Connection, user) -> list[int]:
    """Whose keys kept on the server this staff member may sign with: their
    organisation's, its schools' (a department), and its department's (a
    school), as a department's trust covers its schools. Never another school's."""
    return await bank.release_org_ids(conn, user.org_id)


def unlock(pem: bytes, passphrase: str) -> Ed25519PrivateKey:
    if not passphrase:
        raise UserError("passphrase_needed", "enter the key's passphrase: it is asked each time and never stored")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode())
    except (ValueError, TypeError):
        raise UserError("wrong_passphrase", "wrong passphrase for this signing key: check it and try again") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError("not_ed25519", "the stored key is not an Ed25519 key")
    return key


def _check_new_key(name: str, passphrase: str, repeat: str | None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME:
        raise UserError(
            "bad_key_name",
            f"give the key a name of 1 to {MAX_KEY_NAME} characters, such as to-toan-2025",
            max=MAX_KEY_NAME,
        )
    if len(passphrase) < MIN_PASSPHRASE:
        raise UserError(
            "weak_passphrase", f"the passphrase needs at least {MIN_PASSPHRASE} characters", min=MIN_PASSPHRASE
        )
    if repeat is not None and repeat != passphrase:
        raise UserError("passphrase_mismatch", "the two passphrases differ: type the same passphrase twice")
    return name


async def _store_key(conn: asyncpg.Connection, user, name: str, key: Ed25519PrivateKey, passphrase: str) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    fp = itembank_keys.fingerprint(key.public_key())
    try:
        await conn.execute(
            """
            INSERT INTO signing_keys (fingerprint, org_id, name, private_key_pem, public_key_pem, created_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            fp,
            user.org_id,
            name,
            pem,
            itembank_keys.public_key_pem(key.public_key()).decode(),
            user.id,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict("key_exists", f"the key {fp} is already stored on this server") from None
    return fp


async def generate_key(conn: asyncpg.Connection, user, name: str, passphrase: str, repeat: str) -> str:
    name = _check_new_key(name, passphrase, repeat)
    return await _store_key(conn, user, name, Ed25519PrivateKey.generate(), passphrase)


def read_key_file(pem: bytes, passphrase: str) -> bytes:
    """The raw private key in a PEM file made by `cbt keys generate` (run in the reading process:
    the file says how much work its passphrase costs to check)."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode())
    except TypeError:
        # Not encrypted: it is stored encrypted under the passphrase given here.
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except Exception:
            raise UserError("not_a_key", "the file is not a PEM private key made by cbt keys generate") from None
    except ValueError:
        if b"ENCRYPTED" in pem:
            raise UserError(
                "wrong_passphrase", "wrong passphrase for the uploaded key: give the one it was made with"
            ) from None
        raise UserError("not_a_key", "the file is not a PEM private key made by cbt keys generate") from None
    except Exception:
        raise UserError("not_a_key", "the file is not a PEM private key made by cbt keys generate") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError("not_ed25519", "the key is not an Ed25519 key: make one with cbt keys generate")
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


async def upload_key(conn: asyncpg.Connection, user, name: str, pem: bytes, passphrase: str) -> str:
    """Store a key made with `cbt keys generate`, protected by its own passphrase."""
    name = _check_new_key(name, passphrase, None)
    key = Ed25519PrivateKey.from_private_bytes(await uploads.off_loop(read_key_file, pem, passphrase))
    return await _store_key(conn, user, name, key, passphrase)


async def _signing_key(conn: asyncpg.Connection, fp: str, org_ids: list[int]) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT fingerprint, name, private_key_pem, public_key_pem FROM signing_keys"
        " WHERE fingerprint = $1 AND org_id = ANY($2::bigint[])",
        fp,
        org_ids,
    )
    if row is None:
        raise NotFound("unknown_signing_key", "no such signing key on this server: choose one from the list")
    return row


async def list_keys(conn: asyncpg.Connection, for_org: int, org_ids: list[int]) -> list[asyncpg.Record]:
    """The server's signing keys of these organisations, with who trusts each
    (codes; '*' is the operator's trust, for every organisation), whether
    for_org's signatures with it are accepted (`trusted`), and who revoked it
    (NULL with revoked_at: the operator)."""
    return await conn.fetch(
        """
        SELECT s.fingerprint, s.name, s.created_at, u.username AS created_by_name, o.code AS org_code,
               t.revoked_at, r.username AS revoked_by, ro.code AS revoked_by_org,
               array(SELECT coalesce(g.code, '*') FROM key_trust kt LEFT JOIN orgs g ON g.id = kt.org_id
                     WHERE kt.fingerprint = s.fingerprint ORDER BY g.code NULLS FIRST) AS trusted_by,
               t.revoked_at IS NULL AND EXISTS (
                   SELECT 1 FROM key_trust kt WHERE kt.fingerprint = s.fingerprint
                     AND (kt.org_id IS NULL OR kt.org_id = $2
                          OR kt.org_id = (SELECT parent_id FROM orgs WHERE id = $2))) AS trusted
        FROM signing_keys s JOIN users u ON u.id = s.created_by JOIN orgs o ON o.id = s.org_id
        LEFT JOIN trusted_keys t ON t.fingerprint = s.fingerprint
        LEFT JOIN users r ON r.id = t.revoked_by LEFT JOIN orgs ro ON ro.id = r.org_id
        WHERE s.org_id = ANY($1::bigint[]) ORDER BY s.created_at, s.fingerprint
        """,
        org_ids,
        for_org,
    )


async def trust(conn: asyncpg.Connection, user, fp: str, org_ids: list[int]) -> None:
    """Trust a server key's public half for the user's organisation (and its
    schools, for a department), as cbt keys trust does for the whole server."""
    row = await _signing_key(conn, fp, org_ids)
    await bank.trust_key(conn, row["public_key_pem"].encode(), row["name"], org_id=user.org_id, by=user.id)


async def revoke(conn: asyncpg.Connection, user, fp: str, org_ids: list[int]) -> None:
    """Revoke a server key of these organisations for everyone, for good: its
    signatures are refused wherever it was trusted, and nobody here trusts it again."""
    row = await _signing_key(conn, fp, org_ids)
    try:
        await bank.revoke_key(
            conn, row["fingerprint"], by=user.id, public_key_pem=row["public_key_pem"], name=row["name"]
        )
    except NotFound:
        raise Conflict(
            "key_revoked", f"the key {fp} is revoked already: make a new key to sign with", fingerprint=fp
        ) from None
