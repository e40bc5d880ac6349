"""The subjects an organisation keeps: a code (toan, vat-li) and its Vietnamese name.

Items, and the subjects teachers write for and reviewers review, are chosen
from this list, never typed: a review queue matches an item's subject to a
reviewer's exactly, so an item saved as "Toán" while its reviewer reviews
"toan" would wait for ever. What a person or a file names a
subject by is looked up by its code or its name, ignoring case, accents,
spaces and punctuation, and i for y ("Vật lý" is "Vật lí"): :func:`key`.

A school uses its department's list and any subjects it adds itself; a
department or a school without one keeps a list of its own, seeded with the
usual subjects of Vietnamese secondary schools (:data:`STANDARD`, the same
rows migration 018 gave the organisations that existed then). Administrators
add, rename and remove their own organisation's subjects; one in use is not
removed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import asyncpg

from cbt.platform.errors import Conflict, NotFound, UserError
from cbt.roster import sort_fold

# The usual subjects of lower and upper secondary school (GDPT 2018), with the
# foreign languages of the national exam. Keep in step with migration 018's list.
STANDARD: tuple[tuple[str, str], ...] = (
    ("toan", "Toán"),
    ("ngu-van", "Ngữ văn"),
    ("tieng-anh", "Tiếng Anh"),
    ("vat-li", "Vật lí"),
    ("hoa-hoc", "Hoá học"),
    ("sinh-hoc", "Sinh học"),
    ("lich-su", "Lịch sử"),
    ("dia-li", "Địa lí"),
    ("tin-hoc", "Tin học"),
    ("gdktpl", "Giáo dục kinh tế và pháp luật"),
    ("cong-nghe", "Công nghệ"),
    ("khtn", "Khoa học tự nhiên"),
    ("lsdl", "Lịch sử và Địa lí"),
    ("gdcd", "Giáo dục công dân"),
    ("gdqpan", "Giáo dục quốc phòng và an ninh"),
    ("gdtc", "Giáo dục thể chất"),
    ("am-nhac", "Âm nhạc"),
    ("mi-thuat", "Mĩ thuật"),
    ("tieng-phap", "Tiếng Pháp"),
    ("tieng-nga", "Tiếng Nga"),
    ("tieng-trung", "Tiếng Trung Quốc"),
    ("tieng-nhat", "Tiếng Nhật"),
    ("tieng-han", "Tiếng Hàn"),
    ("tieng-duc", "Tiếng Đức"),
)
# A code goes into item files, release names and URLs as it is: plain YAML, no quoting needed.
CODE = re.compile(r"[a-z][a-z0-9-]{0,31}")
MAX_NAME = 100


def key(text: str) -> str:
    """How a subject's code or name is compared: "Vật lý", "vat-li" and "VẬT LÍ" are all "vatli".

    Migration 018 compares with the same rule in SQL."""
    text = re.sub("[\u0300-\u036f]", "", unicodedata.normalize("NFD", text))
    text = text.replace("Đ", "d").replace("đ", "d").lower()
    # i for y: Vietnamese spells lí/lý, kĩ/kỹ, Mĩ/Mỹ both ways.
    return re.sub(r"[^a-z0-9]+", "", text).replace("y", "i")


@dataclass(frozen=True)
class Subject:
    code: str
    name: str
    org_id: int  # whose list it is on: the organisation's own, or its department's


def find(subjects: list[Subject], text: str) -> Subject | None:
    """The subject a code or name stands for, as :func:`key` compares them."""
    wanted = key(text)
    if not wanted:
        return None
    for s in subjects:
        if wanted in (key(s.code), key(s.name)):
            return s
    return None


def _sorted(rows) -> list[Subject]:
    # By name as a reader looks for it: Đ after D as in the Vietnamese alphabet, accents breaking ties.
    subjects = [Subject(r["code"], r["name"], r["org_id"]) for r in rows]
    return sorted(subjects, key=lambda s: (sort_fold(s.name), s.name, s.code))


async def seed(conn: asyncpg.Connection, org_id: int) -> None:
    """Give a new department, or a school without one, the usual subjects."""
    await conn.executemany(
        "INSERT INTO subjects (org_id, code, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(org_id, code, name) for code, name in STANDARD],
    )


_LIST = """
SELECT s.org_id, s.code, s.name FROM subjects s
WHERE s.org_id = $1 OR s.org_id = (SELECT parent_id FROM orgs WHERE id = $1)
"""


async def list_for(conn: asyncpg.Connection, org_id: int) -> list[Subject]:
    """The subjects this organisation's staff choose from: its own and its department's."""
    return _sorted(await conn.fetch(_LIST, org_id))


async def names(conn: asyncpg.Connection, org_ids: list[int]) -> dict[str, str]:
    """code -> Vietnamese name, for showing the subjects of these organisations' items and staff."""
    rows = await conn.fetch(
        "SELECT code, name FROM subjects WHERE org_id = ANY($1::bigint[])"
        " OR org_id IN (SELECT parent_id FROM orgs WHERE id = ANY($1::bigint[]))",
        org_ids,
    )
    return {r["code"]: r["name"] for r in rows}


def _listed(subjects: list[Subject]) -> str:
    return ", ".join(f"{s.code} ({s.name})" for s in subjects)


async def resolve(conn: asyncpg.Connection, org_id: int, text: str) -> str:
    """The code of the subject `text` names in this organisation's list; refused if it names none."""
    subjects = await list_for(conn, org_id)
    found = find(subjects, text)
    if found is None:
        raise UserError(
            "subject_not_in_list",
            f"the subject {text!r} is not in the list of subjects: choose one of {_listed(subjects)}"
            " (an administrator adds subjects on the Subjects page)",
            subject=text,
        )
    return found.code


async def save(conn: asyncpg.Connection, org_id: int, code: str, name: str) -> str:
    """Add a subject to this organisation's own list, or rename one of its own."""
    code, name = code.strip().lower(), " ".join(name.split())
    if not CODE.fullmatch(code):
        raise UserError(
            "bad_subject_code",
            f"subject code {code!r}: use up to 32 lower-case letters without"
            " accents, digits and -, starting with a letter (e.g. toan, vat-li)",
            subject=code,
        )
    if not name or len(name) > MAX_NAME:
        raise UserError(
            "bad_subject_name",
            f"give the subject its Vietnamese name, 1 to {MAX_NAME} characters (e.g. Vật lí)",
            limit=MAX_NAME,
        )
    name = unicodedata.normalize("NFC", name)
    async with conn.transaction():
        # One list at a time, so that two additions cannot both pass the clash check below.
        await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", org_id)
        subjects = await list_for(conn, org_id)
        for s in subjects:
            if s.code != code and {key(code), key(name)} & {key(s.code), key(s.name)}:
                raise Conflict(
                    "subject_exists",
                    f"the list already has {s.code} ({s.name}), which reads the same: use it, or rename it",
                    subject=s.code,
                    name=s.name,
                )
        mine = next((s for s in subjects if s.code == code), None)
        if mine is not None and mine.org_id != org_id:
            raise Conflict(
                "subject_of_department",
                f"{code} ({mine.name}) is on your department's list: only its administrators rename it",
                subject=code,
                name=mine.name,
            )
        await conn.execute(
            "INSERT INTO subjects (org_id, code, name) VALUES ($1, $2, $3)"
            " ON CONFLICT (org_id, code) DO UPDATE SET name = EXCLUDED.name",
            org_id,
            code,
            name,
        )
    return code


async def remove(conn: asyncpg.Connection, org_id: int, code: str) -> None:
    """Take a subject off this organisation's own list, unless an item or a person still has it."""
    async with conn.transaction():
        row = await conn.fetchrow("SELECT name FROM subjects WHERE org_id = $1 AND code = $2 FOR UPDATE", org_id, code)
        if row is None:
            raise NotFound("unknown_subject", f"no subject {code!r} on your organisation's list")
        # Whoever uses the list: this organisation and, for a department, its schools.
        used = await conn.fetchrow(
            """
            SELECT (SELECT count(*) FROM draft_items d JOIN orgs o ON o.id = d.org_id
                    WHERE d.subject = $2 AND (o.id = $1 OR o.parent_id = $1)) AS items,
                   (SELECT count(*) FROM staff_subjects ss JOIN users u ON u.id = ss.user_id
                    JOIN orgs o ON o.id = u.org_id
                    WHERE ss.subject = $2 AND (o.id = $1 OR o.parent_id = $1)) AS staff
            """,
            org_id,
            code,
        )
        if used["items"] or used["staff"]:
            raise Conflict(
                "subject_in_use",
                f"{code} ({row['name']}) is the subject of {used['items']} item(s) and"
                f" {used['staff']} staff member(s): it stays on the list",
                subject=code,
                name=row["name"],
                items=used["items"],
                staff=used["staff"],
            )
        await conn.execute("DELETE FROM subjects WHERE org_id = $1 AND code = $2", org_id, code)


async def not_in_list(conn: asyncpg.Connection, org_ids: list[int]) -> list[asyncpg.Record]:
    """Subjects that items or staff of these organisations have but their list lacks
    (left from before the list, when subjects were typed), with how many of each."""
    return await conn.fetch(
        """
        WITH used AS (
            SELECT d.org_id, d.subject, 1 AS item, 0 AS person FROM draft_items d WHERE d.org_id = ANY($1::bigint[])
            UNION ALL
            SELECT u.org_id, ss.subject, 0, 1 FROM staff_subjects ss JOIN users u ON u.id = ss.user_id
            WHERE u.org_id = ANY($1::bigint[])
        )
        SELECT o.code AS org_code, used.subject, sum(used.item) AS items, sum(used.person) AS staff
        FROM used JOIN orgs o ON o.id = used.org_id
        WHERE NOT EXISTS (SELECT 1 FROM subjects s WHERE s.code = used.subject
                          AND (s.org_id = o.id OR s.org_id = o.parent_id))
        GROUP BY o.code, used.subject ORDER BY o.code, used.subject
        """,
        org_ids,
    )
