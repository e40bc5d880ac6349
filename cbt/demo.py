"""`cbt demo`: a department, a school, and one account per staff role, so a
newcomer can sign in and look around. Running it again adds nothing twice."""

from __future__ import annotations

import secrets

from cbt import accounts, db
from cbt.config import Settings

DEPARTMENT = ("DEMO-SGD", "Sở Giáo dục và Đào tạo (demo)")
SCHOOL = ("DEMO-THPT", "Trường THPT Demo")
# username, role, organisation, display name
DEMO_USERS = (
    ("admin", "admin", DEPARTMENT[0], "Quản trị Sở (demo)"),
    ("teacher", "teacher", SCHOOL[0], "Nguyễn Thị Giáo Viên"),
    ("reviewer", "reviewer", SCHOOL[0], "Trần Văn Tổ Trưởng"),
    ("proctor", "proctor", SCHOOL[0], "Lê Văn Coi Thi"),
    ("board", "board", DEPARTMENT[0], "Hội đồng thi (demo)"),
)


def _password() -> str:
    # Easy to read aloud and type: no confusable characters.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


async def seed_demo(dsn: str, settings: Settings) -> str:
    conn = await db.connect(dsn)
    lines = []
    try:
        await db.migrate(conn)
        async with conn.transaction():
            if not await conn.fetchval("SELECT 1 FROM orgs WHERE code = $1", DEPARTMENT[0]):
                await accounts.add_org(conn, DEPARTMENT[0], DEPARTMENT[1], "department")
            if not await conn.fetchval("SELECT 1 FROM orgs WHERE code = $1", SCHOOL[0]):
                await accounts.add_org(conn, SCHOOL[0], SCHOOL[1], "school", DEPARTMENT[0])
            for username, role, org, name in DEMO_USERS:
                if await conn.fetchval("SELECT 1 FROM users WHERE lower(username) = $1", username):
                    lines.append(f"  {username:<9} {role:<9} (exists; `cbt user passwd {username}` "
                                 "sets a new password)")
                    continue
                password = _password()
                await accounts.add_user(conn, username, role, org, password, name)
                lines.append(f"  {username:<9} {role:<9} password: {password}")
    finally:
        await conn.close()
    return "Demo accounts (passwords are shown only now):\n" + "\n".join(lines)
