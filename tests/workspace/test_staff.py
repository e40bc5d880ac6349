"""The staff shell in a real browser: sign in, navigate by keyboard, switch
language, create an account, sign out; no CSP violation or script error."""

from support.accounts import PASSWORD
from support.browser import SCREENSHOTS, chromium_page, live_server, require_chromium
from support.cli import free_port


def test_staff_shell_in_chromium(staff, dsn, tmp_path):
    require_chromium()
    with live_server(dsn, free_port()) as base, chromium_page() as (page, problems):
        page.goto(base + "/staff/users")
        assert page.url.startswith(base + "/login")
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("h1").inner_text() == "Đăng nhập cán bộ"

        # Keyboard only: the cursor starts in the username box; from the top
        # of the page the skip link comes first.
        assert page.evaluate("document.activeElement.id") == "username"
        first = page.evaluate("document.querySelector('a[href], button, input:not([type=hidden])').className")
        assert first == "skip"
        page.focus(".skip")
        box = page.locator(".skip").bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0  # shown on screen once focused
        page.focus("#username")
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(base + "/staff/users")
        assert "Tài khoản cán bộ" in page.locator("h1").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "staff-users-vi.png"), full_page=True)

        page.click("text=English")
        page.wait_for_url(base + "/staff/users")
        assert page.locator("h1").inner_text() == "Staff accounts"

        page.fill("#nu-username", "browser.made")
        page.fill("#nu-display", "Đỗ Thị Trình Duyệt")
        page.select_option("#nu-role", "proctor")
        page.fill("#nu-password", "a long browser password")
        page.click("text=Create account")
        page.wait_for_url("**/staff/users?created=browser.made")
        assert "Account browser.made created." in page.locator(".notice").inner_text()
        assert page.locator("td", has_text="Đỗ Thị Trình Duyệt").count() == 1

        page.click("text=Sign out")
        page.wait_for_url(base + "/login")
        page.goto(base + "/staff")
        assert page.url.startswith(base + "/login")
        assert problems == [], problems
        # A missing page renders in the layout too.
        page.goto(base + "/does-not-exist")
        assert page.locator("h1").inner_text() == "Page not found"
        assert len(problems) == 1 and "404" in problems[0]


async def test_the_front_page_is_a_way_in_for_students_and_staff(client, staff):
    from support.accounts import login

    resp = await client.get("/", allow_redirects=False)
    page = await resp.text()
    assert resp.status == 200
    assert 'id="students-way-in" href="/exam">Vào phòng thi<' in page
    assert 'id="staff-way-in" href="/login">Đăng nhập cán bộ<' in page
    await client.get("/lang/en")
    assert 'href="/exam">Go to the exam<' in await (await client.get("/")).text()
    await login(client, "teacher")
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/staff"
