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
