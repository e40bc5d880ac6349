"""Signed releases in the question bank: the demo bank, a school's own, and trusting their key."""

import dataclasses

import pytest

from cbt import bank, releases
from itembank import keys as ik
from itembank import package
from itembank.demo import GRAPH, graph_svg, single, write_demo_bank
from itembank.model import BankInfo


@pytest.fixture(scope="module")
def signed_demo(tmp_path_factory):
    """The demo bank, signed by a fresh key: (release folder, .cbtbank bytes, .pub path)."""
    root = tmp_path_factory.mktemp("bank")
    folder = root / "demo"
    write_demo_bank(folder)
    made = ik.generate_key_files("demo-signer", root / "keys")
    package.sign(folder, ik.load_private_key(made.private_path))
    packed = root / "demo.cbtbank"
    package.pack(folder, packed)
    return folder, packed.read_bytes(), made.public_path


async def trust(conn, pub_path, name="demo signer"):
    return await bank.trust_key(conn, pub_path.read_bytes(), name)


SCHOOL = "thpt-a-toan 1"


def school_items():
    """The school's own single-choice items of the demo's ham-so, level 1 (the demo has 3), one with a figure."""
    return [
        single(
            "HS-A1",
            "ham-so",
            1,
            f"Câu của trường A1: đồ thị nào dưới đây?\n\n![Đồ thị]({GRAPH})",
            ["$y = x^3 - 3x$", "$y = -x^3 + 3x$", "$y = x^4$", "$y = x^2$"],
            media=(GRAPH,),
        ),
        single(
            "HS-A2",
            "ham-so",
            1,
            "Câu của trường A2: hàm số $y = 2x + 1$ đồng biến trên khoảng nào?",
            ["$\\mathbb{R}$", "$(0; 1)$", "$(-\\infty; 0)$", "$(1; 2)$"],
        ),
    ]


def write_release(folder, key, name: str, subject: str | None, items) -> None:
    info = BankInfo(name=name.split()[0], version=name.split()[1], title=f"Bản {name}", subject=subject)
    for path, data in releases.release_files(info, items, {GRAPH: graph_svg().encode()}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    package.sign(folder, key)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Signed release folders by tag: the demo bank, the school's own, one of
    another subject, and one holding the demo's HS-01 at version 2."""
    root = tmp_path_factory.mktemp("releases")
    made = ik.generate_key_files("exam-board", root / "keys")
    key = ik.load_private_key(made.private_path)
    out = {"pub": made.public_path, "demo": root / "demo"}
    write_demo_bank(out["demo"])
    package.sign(out["demo"], key)
    changed = dataclasses.replace(
        single("HS-01", "ham-so", 1, "Câu HS-01, bản sửa lại.", ["1", "2", "3", "4"]), version=2
    )
    for tag, name, subject, items in (
        ("school", SCHOOL, "toan", school_items()),
        ("physics", "thpt-a-vat-li 1", "vat-li", school_items()),
        ("conflict", "thpt-a-sua 1", "toan", [changed]),
        ("other", "thpt-b-toan 1", "toan", school_items()),
    ):
        out[tag] = root / tag
        out[tag].mkdir()
        write_release(out[tag], key, name, subject, items)
    return out


@pytest.fixture
async def imported(conn, staff, folders):
    """The releases in the bank: the demo for the department SGD-T, the others
    for THPT-A, but 'other' for THPT-B. Their ids by tag."""
    await bank.trust_key(conn, folders["pub"].read_bytes(), "exam board")
    ids = {}
    for tag, org in (
        ("demo", "SGD-T"),
        ("school", "THPT-A"),
        ("physics", "THPT-A"),
        ("conflict", "THPT-A"),
        ("other", "THPT-B"),
    ):
        org_id = await conn.fetchval("SELECT id FROM orgs WHERE code = $1", org)
        ids[tag] = (await bank.import_release(conn, folders[tag], org_id)).release_id
    return ids
