"""`cbt demo`: a department, a school, one account per staff role, and a
signed demo bank, so a newcomer can sign in and look around. Running it
again adds nothing twice."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from cbt import accounts, bank, db
from cbt.config import Settings
from itembank import keys as itembank_keys
from itembank import package
from itembank.demo import BANK, write_demo_bank

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
        lines.append(await _demo_bank(conn, settings.data_dir))
    finally:
        await conn.close()
    return "Demo accounts (passwords are shown only now):\n" + "\n".join(lines)


async def _demo_bank(conn, data_dir: Path) -> str:
    """Sign the demo bank with a key made here and now, trust it, import it."""
    if await conn.fetchval("SELECT 1 FROM bank_releases WHERE name = $1 AND version = $2",
                           BANK.name, BANK.version):
        return f"Demo bank {BANK.name} {BANK.version}: already imported"
    folder = data_dir / "demo-bank"
    shutil.rmtree(folder, ignore_errors=True)
    write_demo_bank(folder)
    # The private key is generated, never committed: it lives in the data dir
    # (0600) so the demo release can be re-signed, and nowhere else.
    key_dir = data_dir / "demo-keys"
    key_path = key_dir / "demo-signer.key"
    if not key_path.exists():
        itembank_keys.generate_key_files("demo-signer", key_dir)
    private_key = itembank_keys.load_private_key(key_path)
    package.sign(folder, private_key)
    pem = itembank_keys.public_key_pem(private_key.public_key())
    await bank.trust_key(conn, pem, "cbt demo signer")
    result = await bank.import_release(conn, folder)
    return f"Demo bank: {result}"
