"""The bank browser in Chromium: items with math and an image, as a
student will see them, with no script error and no CSP violation."""

import asyncio

from support.accounts import PASSWORD
from support.bank import trust
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port

from cbt import bank


def look_at_items(dsn: str, with_image: str, with_math: str) -> list[str]:
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "teacher")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(f"{base}/bank/items/{with_image}")
        img = page.locator(".question img").first
        img.wait_for()
        assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", img.element_handle())
        page.screenshot(path=str(SCREENSHOTS / "bank-item-image-vi.png"), full_page=True)
        page.goto(f"{base}/bank/items/{with_math}")
        assert page.locator(".question math").count() >= 1
        page.screenshot(path=str(SCREENSHOTS / "bank-item-math-vi.png"), full_page=True)
        page.goto(base + "/bank?level=4")
        assert page.locator("tbody tr").count() >= 1
        return problems


async def test_item_preview_in_chromium(staff, conn, dsn, signed_demo):
    require_chromium()
    folder, _, pub = signed_demo
    await trust(conn, pub)
    await bank.import_release(conn, folder)
    image = await conn.fetchrow(
        "SELECT b.item_id || '/' || b.version FROM bank_items b JOIN release_media rm "
        "ON rm.release_id = b.first_release_id WHERE b.source LIKE '%' || rm.path || '%' ORDER BY 1 LIMIT 1"
    )
    math = await conn.fetchrow("SELECT item_id || '/' || version FROM bank_items WHERE stem LIKE '%$%' ORDER BY 1")
    assert image and math, "the demo bank has an item with an image and one with math"
    # Playwright's sync API cannot run inside this test's event loop: use a thread.
    problems = await asyncio.to_thread(look_at_items, dsn, image[0], math[0])
    assert problems == [], problems


# -- item sets, shown whole (issue 18) ------------------------------------------------------

READING = """\
- id: R1
  version: 1
  type: set
  subject: tieng-anh
  grade: 12
  topic: reading
  lang: en
  status: approved
  stimulus: |
    **Passage.** Students counted the cups their canteen threw away.

    ![The cups](media/cups.png)
  items:
    - id: R1-1
      type: single
      level: biet
      points: 0.25
      stem: What did the students count?
      options: {A: cups, B: plates}
      answer: A
    - id: R1-2
      type: truefalse4
      level: hieu
      points: 1
      stem: Decide for each statement.
      statements:
        a: {text: They counted cups., answer: true}
        b: {text: They counted plates., answer: false}
        c: {text: The canteen threw cups away., answer: true}
        d: {text: Nobody counted anything., answer: false}
- id: G-1
  version: 1
  type: single
  subject: tieng-anh
  topic: grammar
  level: van-dung
  points: 0.25
  lang: en
  status: approved
  stem: Choose the right word.
  options: {A: is, B: are}
  answer: A
"""


async def imported_reading(conn, tmp_path) -> int:
    """A signed release of the 2025 levels with one set and one lone item, imported for THPT-A."""
    from support.authoring import PNG

    from cbt import releases
    from itembank import keys as ik
    from itembank import package
    from itembank.formats.yaml_format import parse_text
    from itembank.levels import SCHEME_2025
    from itembank.model import BankInfo

    parsed = parse_text(READING, "reading.yaml", levels=SCHEME_2025)
    assert parsed.problems == []
    info = BankInfo(name="en-doc", version="1", subject="tieng-anh", levels=SCHEME_2025)
    folder = tmp_path / "en-doc"
    files = releases.release_files(
        info, [s.item for s in parsed.items], {"media/cups.png": PNG}, [s.set for s in parsed.sets]
    )
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    made = ik.generate_key_files("reader", tmp_path / "keys")
    package.sign(folder, ik.load_private_key(made.private_path))
    await trust(conn, made.public_path)
    school = await conn.fetchval("SELECT id FROM orgs WHERE code = 'THPT-A'")
    return (await bank.import_release(conn, folder, school)).release_id


async def test_the_bank_shows_a_set_whole_and_its_questions_lead_to_it(client, conn, staff, tmp_path):
    import re

    from support.accounts import login

    await imported_reading(conn, tmp_path)
    await login(client, "teacher")
    # The list marks each question of a set, with a link to the set; levels by the release's scheme.
    page = await (await client.get("/bank")).text()
    marked = re.findall(r'<tr data-set="R1">\s*<td><a href="/bank/items/([\w-]+)/1">', page)
    assert marked == ["R1-1", "R1-2"] and 'href="/bank/items/G-1/1"' in page
    assert 'href="/bank/items/R1/1">Câu 1/2 của nhóm R1</a>' in page
    assert 'href="/bank/items/R1/1">Câu 2/2 của nhóm R1</a>' in page
    assert ">Biết</td>" in page and ">Hiểu</td>" in page and ">Vận dụng</td>" in page
    menu = page.split('name="level"')[1].split("</select>")[0]
    assert re.findall(r">([^<]+)</option>", menu)[1:] == ["Biết", "Hiểu", "Vận dụng"]
    # The set's page: the passage, then each question as students see it, with its key for staff.
    resp = await client.get("/bank/items/R1/1")
    page = await resp.text()
    assert resp.status == 200 and "Nhóm câu hỏi R1" in page
    passage = page.split('id="passage"')[1].split("</section>")[0]
    assert "<strong>Passage.</strong>" in passage and 'src="/bank/items/R1/1/media/cups.png"' in passage
    assert page.index("What did the students count?") < page.index("Decide for each statement.")
    assert 'id="key-R1-1"' in page and "<strong>A</strong>" in page.split('id="key-R1-1"')[1].split("</div>")[0]
    assert "a) Đúng; b) Sai; c) Đúng; d) Sai" in page.split('id="key-R1-2"')[1].split("</div>")[0]
    assert "reading · Biết · Một lựa chọn" in page and "reading · Hiểu · Đúng/Sai 4 ý" in page
    assert "Trong bài thi, các câu của nhóm đi liền nhau, theo đúng thứ tự dưới đây." in page
    image = await client.get("/bank/items/R1/1/media/cups.png")
    assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    # A question's page says which set it is in, and leads there.
    page = await (await client.get("/bank/items/R1-2/1")).text()
    assert 'id="in-set"' in page and "câu 2/2 của một nhóm câu hỏi" in page
    assert '<a href="/bank/items/R1/1">Xem cả nhóm R1</a>' in page
    assert 'id="in-set"' not in await (await client.get("/bank/items/G-1/1")).text()
    # Another school's reader finds no such set, nor its picture.
    await login(client, "b-teacher")
    assert (await client.get("/bank/items/R1/1")).status == 404
    assert (await client.get("/bank/items/R1/1/media/cups.png")).status == 404
    assert (await client.get("/bank/items/R9/1")).status == 404


def look_at_a_set(dsn: str) -> list[str]:
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/login")
        page.fill("#username", "teacher")
        page.fill("#password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url(base + "/staff")
        page.goto(base + "/bank")
        page.click("text=Câu 2/2 của nhóm R1")
        page.wait_for_url(base + "/bank/items/R1/1")
        img = page.locator("#passage img").first
        img.wait_for()
        assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", img.element_handle())
        assert page.locator("section[data-child]").count() == 2
        page.screenshot(path=str(SCREENSHOTS / "bank-set-vi.png"), full_page=True)
        return problems


async def test_a_set_in_chromium(staff, conn, dsn, tmp_path):
    require_chromium()
    await imported_reading(conn, tmp_path)
    problems = await asyncio.to_thread(look_at_a_set, dsn)
    assert problems == [], problems
