"""Items written in the workspace: their form fields, a picture, a two-item file, the template."""

import io
import tempfile
from pathlib import Path

from openpyxl import load_workbook

from cbt import accounts
from itembank.formats.xlsx import write_template

BASE = {
    "subject": "toan",
    "grade": "12",
    "topic": "ham-so",
    "level": "2",
    "points": "0.25",
    "lang": "vi",
    "shuffle": "on",
}


FIELDS = {
    "single": {
        "type": "single",
        "stem": "Đạo hàm của $y = x^3$ là",
        "opt_A": "$3x^2$",
        "opt_B": "$x^2$",
        "opt_C": "$3x$",
        "key": "A",
        "explanation": "Công thức $(x^n)' = nx^{n-1}$.",
    },
    "multiple": {
        "type": "multiple",
        "stem": "Chọn các số nguyên tố",
        "opt_A": "2",
        "opt_B": "4",
        "opt_C": "5",
        "key": ["A", "C"],
    },
    "truefalse4": {
        "type": "truefalse4",
        "stem": "Cho hàm số $y = x^2$.",
        "st_a": "Hàm số chẵn.",
        "st_a_answer": "true",
        "st_b": "Đồng biến trên R.",
        "st_b_answer": "false",
        "st_c": "Có cực tiểu.",
        "st_c_answer": "true",
        "st_d": "Có cực đại.",
        "st_d_answer": "false",
    },
    "short": {"type": "short", "stem": "Nghiệm của $2x + 3 = 0$ là", "short_key": "-1,5", "short_format": "vn-numeric"},
    "essay": {"type": "essay", "stem": "Trình bày cách khảo sát hàm số bậc ba.", "points": "2"},
}


async def who(conn, username: str) -> accounts.Staff:
    r = await conn.fetchrow(
        "SELECT u.id, u.username, u.display_name, u.role, u.org_id, o.code, o.kind"
        " FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.username = $1",
        username,
    )
    return accounts.Staff(r["id"], r["username"], r["display_name"], r["role"], r["org_id"], r["code"], r["kind"])


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


YAML_TWO = """\
- id: Y-1
  version: 1
  type: single
  subject: toan
  topic: ham-so
  level: 1
  points: 0.25
  lang: vi
  status: draft
  stem: Hai cộng hai bằng
  options: {A: '4', B: '5'}
  answer: A
- id: Y-2
  version: 1
  type: essay
  subject: toan
  topic: ham-so
  level: 3
  points: 1
  lang: vi
  status: draft
  stem: Giải thích.
"""


def template_bytes(edit=None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.xlsx"
        write_template(path)
        if edit:
            book = load_workbook(path)
            edit(book.worksheets[0])
            out = io.BytesIO()
            book.save(out)
            return out.getvalue()
        return path.read_bytes()
