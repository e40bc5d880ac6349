"""`cbt demo`: a department, a school, one account per staff role, two signed
demo banks (the legacy four levels, and the 2025 three with item sets), a
department signing key kept on the server, an open exam on the first bank
and a draft on the second (a set row, level targets and a bản đặc tả, to see
the 2025 matrix in the builder), so a newcomer can sign in and look around,
and the school's reviewer can sign the school's releases on the server.
Running it again adds nothing twice."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from types import SimpleNamespace

from cbt import accounts, authoring, bank, releases
from cbt.platform import db
from cbt.platform.config import Settings
from itembank import keys as itembank_keys
from itembank import package
from itembank.demo import BANK, demo_2025, write_demo_bank, write_demo_bank_2025

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
                    lines.append(
                        f"  {username:<9} {role:<9} (exists; `cbt user passwd {username}` sets a new password)"
                    )
                    continue
                password = _password()
                await accounts.add_user(conn, username, role, org, password, name)
                line = f"  {username:<9} {role:<9} password: {password}"
                if role in ("teacher", "reviewer"):
                    # So the demo's review queue works at once: both write and review Toán.
                    await authoring.set_subjects(conn, username, [BANK.subject])
                    line += f"  (subject {BANK.subject})"
                lines.append(line)
        lines.append(await _demo_bank(conn, settings.data_dir))
        lines.append(
            await _demo_bank(conn, settings.data_dir, demo_2025().info, write_demo_bank_2025, "demo-bank-2025")
        )
        lines.append(await _demo_signing_key(conn))
        lines.append(await _demo_exam(conn, settings.data_dir, settings))
        lines.append(await _demo_exam_2025(conn))
    finally:
        await conn.close()
    return "Demo accounts (passwords are shown only now):\n" + "\n".join(lines)


async def _demo_bank(conn, data_dir: Path, info=BANK, write=write_demo_bank, name: str = "demo-bank") -> str:
    """Sign a demo bank (the first, unless told another: its bank.yaml's info,
    the function writing its folder, the folder's name) with a key made here
    and now, trust it, import it."""
    if await conn.fetchval("SELECT 1 FROM bank_releases WHERE name = $1 AND version = $2", info.name, info.version):
        return f"Demo bank {info.name} {info.version}: already imported"
    folder = data_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    write(folder)
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
    # The department's release, shared with its school, as an exam board's would be.
    department = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", DEPARTMENT[0])
    result = await bank.import_release(conn, folder, department)
    return f"Demo bank: {result}"


DEMO_KEY_NAME = "Khoá ký của Sở (demo)"


async def _demo_signing_key(conn) -> str:
    """The department's signing key kept on the server, made and trusted by its
    administrator as on the Signing keys page: the school's reviewer signs the
    school's releases with it (a department's keys serve its schools)."""
    department = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", DEPARTMENT[0])
    fp = await conn.fetchval(
        "SELECT fingerprint FROM signing_keys WHERE org_id = $1 AND name = $2", department, DEMO_KEY_NAME
    )
    if fp is not None:
        return f"Demo signing key {fp} ({DEPARTMENT[0]}): exists (its passphrase was shown when it was made)"
    admin = await conn.fetchrow(
        "SELECT id, org_id FROM users WHERE lower(username) = 'admin' AND org_id = $1", department
    )
    if admin is None:  # an older demo's admin was renamed or moved: nobody to make the key as
        return "Demo signing key: not made (no demo admin in the department)"
    maker = SimpleNamespace(id=admin["id"], org_id=department)
    passphrase = _password()
    async with conn.transaction():
        fp = await releases.generate_key(conn, maker, DEMO_KEY_NAME, passphrase, passphrase)
        await releases.trust(conn, maker, fp, [department])
    return (
        f"Demo signing key {fp} of {DEPARTMENT[0]}, kept on the server and trusted for its schools: the"
        f" reviewer signs releases with it, passphrase: {passphrase}"
    )


DEMO_EXAM = "DEMO-TOAN12"
DEMO_STUDENTS = (
    ("0100000001", "Nguyễn Văn An", "2008-03-01"),
    ("0100000002", "Trần Thị Bình", "2008-05-09"),
    ("0100000003", "Lê Hoàng Cường", "2008-07-02"),
    ("0100000004", "Phạm Thu Dung", "2008-01-15"),
    ("0100000005", "Hoàng Minh Đức", "2008-11-30"),
    ("0100000006", "Vũ Ngọc Hà", "2008-09-21"),
)


def _demo_exam_yaml() -> str:
    import datetime as dt

    opens = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    closes = opens + dt.timedelta(days=30)
    return f"""
code: {DEMO_EXAM}
title: Đề kiểm tra mẫu — Toán 12 (demo)
subject: toan
release: {BANK.name} {BANK.version}
duration_minutes: 45
window: {{opens: {opens.isoformat()}, closes: {closes.isoformat()}, late_entry_minutes: {30 * 24 * 60 - 60}}}
show_score: true
instructions: Đề mẫu gồm ba phần như đề thi tốt nghiệp THPT. Câu trả lời được lưu tự động.
sections:
  - title: Phần I. Trắc nghiệm nhiều phương án lựa chọn
    rows:
      - {{topic: ham-so, level: 1, count: 2, points: 0.25, type: single}}
      - {{topic: mu-logarit, level: 1, count: 2, points: 0.25, type: single}}
      - {{topic: nguyen-ham-tich-phan, level: 1, count: 2, points: 0.25, type: single}}
      - {{topic: toa-do-oxyz, level: 1, count: 2, points: 0.25, type: single}}
  - title: Phần II. Trắc nghiệm đúng sai
    rows:
      - {{topic: ham-so, level: 2, count: 1, points: 1, type: truefalse4}}
      - {{topic: mu-logarit, level: 2, count: 1, points: 1, type: truefalse4}}
  - title: Phần III. Trả lời ngắn
    rows:
      - {{topic: nguyen-ham-tich-phan, level: 3, count: 1, points: 0.5, type: short}}
      - {{topic: toa-do-oxyz, level: 3, count: 1, points: 0.5, type: short}}
"""


async def _demo_exam(conn, data_dir: Path, settings: Settings) -> str:
    """A demo exam, open for a month, with six students and printed tickets."""
    import datetime as dt

    from cbt import exams
    from cbt.roster import Candidate

    if await conn.fetchval("SELECT 1 FROM exams WHERE code = $1", DEMO_EXAM):
        return f"Demo exam {DEMO_EXAM}: exists (new tickets: `cbt exam tickets {DEMO_EXAM}`)"
    await exams.create_exam(conn, exams.parse_exam(_demo_exam_yaml()), SCHOOL[0])
    await exams.add_roster(
        conn,
        DEMO_EXAM,
        [
            Candidate(code, name, dt.date.fromisoformat(dob), "12A1", SCHOOL[1], "P01")
            for code, name, dob in DEMO_STUDENTS
        ],
    )
    await exams.open_exam(conn, DEMO_EXAM)
    tickets = await exams.issue_tickets(conn, DEMO_EXAM)
    sheet = data_dir / "demo-tickets.html"
    # The address printed on every slip: where this demo serves.
    sheet.write_text(
        exams.tickets_html(await exams.get_exam(conn, DEMO_EXAM), tickets, address=exams.exam_address(settings)),
        encoding="utf-8",
    )
    shown = "\n".join(f"    {t['full_name']:<18} {t['ticket']}" for t in tickets[:3])
    return f"Demo exam {DEMO_EXAM}: open at /exam for a month; tickets in {sheet}, for example:\n{shown}"


DEMO_EXAM_2025 = "DEMO-ANH12-2025"


def _demo_exam_2025_yaml() -> str:
    import datetime as dt

    info = demo_2025().info
    opens = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    closes = opens + dt.timedelta(days=30)
    return f"""
code: {DEMO_EXAM_2025}
title: Đề kiểm tra mẫu theo ma trận 2025 — Tiếng Anh 12 (demo)
subject: tieng-anh
release: {info.name} {info.version}
duration_minutes: 20
window: {{opens: {opens.isoformat()}, closes: {closes.isoformat()}, late_entry_minutes: 60}}
show_score: true
instructions: Đề mẫu theo ba mức độ Biết, Hiểu, Vận dụng, với một bài đọc dùng chung cho năm câu hỏi.
level_targets: {{1: 40, 2: 35, 3: 25}}
specification:
  grammar:
    1: Nhận biết dạng đúng của động từ ở thì hiện tại đơn.
    3: Chuyển câu trực tiếp sang câu gián tiếp, lùi thì đúng.
  vocabulary:
    2: Hiểu nghĩa của từ và chọn từ đồng nghĩa.
  reading:
    1: Tìm thông tin được nêu trực tiếp trong bài đọc.
    2: Hiểu ý chính của bài và từ quy chiếu.
    3: Suy luận điều bài đọc không nói thẳng.
sections:
  - title: Phần I. Ngữ pháp và từ vựng
    rows:
      - {{topic: grammar, level: 1, count: 1, points: 0.25, type: single}}
      - {{topic: vocabulary, level: 2, count: 1, points: 0.25, type: single}}
      - {{topic: grammar, level: 3, count: 1, points: 0.25, type: single}}
  - title: Phần II. Đọc hiểu
    rows:
      - {{topic: reading, type: set, count: 1, children: 5, points: 0.25}}
"""


async def _demo_exam_2025(conn) -> str:
    """A draft exam on the 2025 demo bank: a reading passage drawn whole (a set
    row), level targets and a bản đặc tả, to open in the builder."""
    from cbt import exams

    if await conn.fetchval("SELECT 1 FROM exams WHERE code = $1", DEMO_EXAM_2025):
        return f"Demo exam {DEMO_EXAM_2025}: exists"
    await exams.create_exam(conn, exams.parse_exam(_demo_exam_2025_yaml()), SCHOOL[0])
    return (
        f"Demo exam {DEMO_EXAM_2025} (the 2025 matrix, a reading passage): a draft to see and edit in the builder,"
        f" /workspace/exams/{DEMO_EXAM_2025}"
    )
