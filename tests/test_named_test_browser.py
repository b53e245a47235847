"""A named test end to end: a definition file stored and activated, opened as /?test=NAME.

The shipped one-area check (``items/data/tests/an-toan-so.toml``: area 4, at
most 10 questions) and the shipped before/after form are stored through the
admin API, go live through the gate, and are taken in headless Chromium on a
phone-sized screen; the result is area 4's alone. Skipped without
``/usr/bin/chromium`` unless ``NANGLUC_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("NANGLUC_REQUIRE_BROWSER") != "1":
    pytest.skip("/usr/bin/chromium is missing", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from nangluc.items.definitions import SHIPPED_DIR, read_document  # noqa: E402
from nangluc.service.app import create_app  # noqa: E402
from nangluc.service.settings import Settings  # noqa: E402
from service_fixtures import ADMIN_KEY, CHROMIUM_ARGS, served_in_thread  # noqa: E402

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """The app over real HTTP with the shipped bank, and the two shipped tests live."""
    database = tmp_path_factory.mktemp("named") / "nangluc.db"
    app = create_app(
        Settings(database_url=f"sqlite:///{database}", gate_simulees=600).with_admin_keys(ADMIN_KEY)
    )
    with served_in_thread(app) as base:
        with httpx.Client(base_url=base + "/api/v1", timeout=60) as api:
            for name in ("an-toan-so", "phieu-truoc-sau"):
                document = read_document(SHIPPED_DIR / f"{name}.toml")
                stored = api.post(
                    "/admin/test-definitions", json=document, headers={"X-API-Key": ADMIN_KEY}
                )
                assert stored.status_code == 201, stored.text
                live = api.post(f"/admin/tests/{name}/1/activate", headers={"X-API-Key": ADMIN_KEY})
                assert live.status_code == 200, live.text
        yield base, app.state.db


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} from {r.url}") if r.status >= 500 else None,
    )
    yield page
    context.close()
    assert not errors, errors


def _take(page: Page) -> list[str]:
    """Start and answer every question (always the first option); the item ids given."""
    page.locator("form.start-form button[type=submit]").click()
    given: list[str] = []
    while True:
        page.wait_for_selector(
            "#app[data-screen=result], #app[data-screen=question][data-busy=false]"
        )
        if page.locator("#app").get_attribute("data-screen") == "result":
            return given
        answered = int(page.locator("#app").get_attribute("data-answered"))
        assert answered == len(given)
        given.append(page.locator("section.question").get_attribute("data-item-id"))
        page.locator(".option").first.click()
        page.locator("button.continue").click()
        page.wait_for_selector(
            f"#app[data-screen=result], #app[data-screen=question][data-answered='{answered + 1}']"
        )
        assert len(given) <= 40


def test_the_one_area_test_runs_from_its_link_to_an_area_4_result(page: Page, served):
    base, db = served
    page.goto(base + "/?test=an-toan-so")
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator("h1")).to_have_text("Kiểm tra nhanh: an toàn trên mạng")
    expect(page.locator(".points")).to_contain_text("nhiều nhất 10 câu")
    given = _take(page)
    assert 4 <= len(given) <= 10
    assert all(item.startswith("4.") for item in given), given
    expect(page.locator(".result-test")).to_have_text(
        "Bài kiểm tra: Kiểm tra nhanh: an toàn trên mạng"
    )
    # One area in scope: the chart has area 4 alone.
    expect(page.locator(".overall-label")).to_have_text("Mức của bạn ở lĩnh vực Bảo vệ và an toàn")
    expect(page.locator(".chart > li")).to_have_count(1)
    expect(page.locator(".chart")).to_contain_text("Bảo vệ và an toàn")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "named-test-area-4-result.png"), full_page=True)
    session_id = page.evaluate("() => localStorage.getItem('nangluc.session')")
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT test_name, test_version, answered FROM test_session "
                "WHERE status = 'finished' AND test_name = 'an-toan-so'"
            )
        ).all()
    assert [(r.test_name, r.test_version, r.answered) for r in row] == [
        ("an-toan-so", "1", len(given))
    ]
    with httpx.Client(base_url=base + "/api/v1") as api:
        result = api.get(f"/sessions/{session_id}/result").json()
    assert result["test"] == {"name": "an-toan-so", "version": "1"}
    assert [a["area"] for a in result["areas"]] == ["4"]


def test_a_fixed_form_gives_its_items_in_order(page: Page, served):
    base, _ = served
    form = read_document(SHIPPED_DIR / "phieu-truoc-sau.toml")["form"]["items"]
    page.goto(base + "/?test=phieu-truoc-sau&lang=en")
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator("h1")).to_have_text("Before/after form: online safety and payments class")
    expect(page.locator(".points")).to_contain_text(f"The test has {len(form)} questions")
    expect(page.locator(".points")).not_to_contain_text("easier or harder")
    assert _take(page) == form
    expect(page.locator(".chart > li")).to_have_count(2)


def test_an_unknown_test_link_offers_the_citys_test(page: Page, served):
    base, _ = served
    page.goto(base + "/?test=khong-co")
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator(".notice")).to_contain_text("Không tìm thấy bài kiểm tra “khong-co”")
    expect(page.locator("h1")).to_have_text("Tự kiểm tra kỹ năng số")
    assert "test=" not in page.url
