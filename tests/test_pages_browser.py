"""End-to-end tests of the citizen page in headless Chromium (Playwright).

The real app (API + pages) runs under uvicorn on a free port with a temporary
SQLite file; the browser takes whole tests on a phone-sized screen. Screenshots
are kept in ``artifacts/screenshots/`` for a person to look at.

Skipped when ``/usr/bin/chromium`` is missing, unless ``NANGLUC_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("NANGLUC_REQUIRE_BROWSER") == "1"
if not CHROMIUM.exists() and not REQUIRE_BROWSER:
    pytest.skip(
        "/usr/bin/chromium is missing (set NANGLUC_REQUIRE_BROWSER=1 to fail instead)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright  # noqa: E402

from nangluc import items  # noqa: E402
from nangluc.engine import irt  # noqa: E402
from nangluc.engine.scoring import area_scores  # noqa: E402
from nangluc.service.app import create_app  # noqa: E402
from nangluc.service.db import SESSION  # noqa: E402
from nangluc.service.settings import Settings  # noqa: E402
from service_fixtures import CHROMIUM_ARGS, served_in_thread  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
LEVELS_VI = ("Bắt đầu", "Cơ bản", "Khá", "Cao", "Nâng cao")
LEVELS_EN = ("Beginning", "Basic", "Intermediate", "High", "Advanced")
# The engine never asks more than this; a loop that goes further is a bug.
MAX_ANSWERS = 60


# ---------------------------------------------------------------- fixtures --


#: The served app's database handle (tests look at what the page stored).
SERVED: dict = {}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """The whole app served over real HTTP, on a temporary SQLite file."""
    database = tmp_path_factory.mktemp("pages") / "nangluc.db"
    app = create_app(Settings(database_url=f"sqlite:///{database}"))
    SERVED["db"] = app.state.db
    with served_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("NANGLUC_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing", pytrace=False)
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url + "/api/v1", timeout=10) as client:
        yield client


def _new_page(browser: Browser, viewport: dict[str, int] = PHONE) -> Page:
    context = browser.new_context(
        viewport=viewport, is_mobile=True, has_touch=True, device_scale_factor=1, locale="vi-VN"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The browser logs every 4xx reply and dropped connection as a console error;
    # the tests cause those on purpose, so they are left out here, while any
    # 5xx reply is a failure.
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} from {r.request.method} {r.url}")
            if r.status >= 500
            else None
        ),
    )
    page.script_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = _new_page(browser)
    yield page
    errors = page.script_errors  # type: ignore[attr-defined]
    page.context.close()
    # A script error or a CSP violation in the console is a failure even when
    # the screen looked right.
    assert not errors, errors


def _shot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 1000
    return path


# ----------------------------------------------------------------- helpers --


def _wait_question(page: Page, answered: int) -> None:
    page.wait_for_selector(
        f"#app[data-screen=question][data-answered='{answered}'][data-busy=false]"
    )


def _start(page: Page, *, ward: str | None = None, age_label: str | None = None) -> None:
    page.wait_for_selector("#app[data-screen=welcome]")
    if ward is not None:
        page.get_by_label("Phường hoặc xã nơi bạn sống").fill(ward)
    if age_label is not None:
        page.get_by_label("Độ tuổi của bạn").select_option(label=age_label)
    page.locator("form.start-form button[type=submit]").click()
    _wait_question(page, 0)


def _answer(page: Page, option: int) -> None:
    """Choose an option and press the continue button; wait for the next screen."""
    answered = int(page.locator("#app").get_attribute("data-answered"))
    page.locator(".option").nth(option).click()
    expect(page.locator(".option").nth(option)).to_have_attribute("aria-pressed", "true")
    page.locator("button.continue").click()
    page.wait_for_selector(
        f"#app[data-screen=result], #app[data-screen=question][data-answered='{answered + 1}'][data-busy=false]"
    )


def _session_id(page: Page) -> str:
    session_id = page.evaluate("() => localStorage.getItem('nangluc.session')")
    assert session_id
    return session_id


def _current_item(page: Page) -> str:
    return page.locator("section.question").get_attribute("data-item-id")


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide"


# ------------------------------------------------------------------- tests --


def test_a_whole_test_on_a_phone_ends_with_level_and_five_areas(
    page: Page, api: httpx.Client, base_url: str
):
    framework = api.get("/framework").json()
    area_names = {a["code"]: a["name"]["vi"] for a in framework["areas"]}

    page.goto(base_url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("h1")).to_have_text("Tự kiểm tra kỹ năng số")
    # Time and length come from the simulation of the shipped test the page reads.
    lengths = json.loads(
        (Path(__file__).resolve().parents[1] / "service" / "static" / "test-length.json").read_text(
            encoding="utf-8"
        )
    )
    minutes, questions = lengths["minutes"], lengths["questions"]
    expect(page.locator(".points")).to_contain_text(
        f"khoảng {minutes['median']} phút; 9 trên 10 người xong trong {minutes['p90']} phút"
    )
    expect(page.locator(".points")).to_contain_text(
        f"chỉ trả lời {questions['median']} câu trở xuống, nhiều nhất là {questions['max']} câu"
    )
    _no_sideways_scroll(page)
    _shot(page, "01-welcome-vi")

    ward = "Phường Hải Châu"
    _start(page, ward=ward, age_label="Từ 65 tuổi trở lên")
    session_id = _session_id(page)
    expect(page.locator(".counter")).to_have_text("Câu 1")
    expect(page.locator(".progress-about")).to_have_text(
        f"Thường khoảng {questions['median']} câu, nhiều nhất {questions['max']} câu"
    )
    # The bar starts empty and follows the server's estimate of the share done.
    assert page.locator(".progress-track").get_attribute("aria-valuenow") == "0"

    # Large targets and large text for an older reader on a phone.
    options = page.locator(".option")
    assert options.count() >= 2
    for i in range(options.count()):
        box = options.nth(i).bounding_box()
        assert box["height"] >= 56 and box["width"] >= 300
        assert float(options.nth(i).evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 18
    expect(page.locator("button.continue")).to_be_disabled()
    page.locator(".option").first.click()
    expect(page.locator("button.continue")).to_be_enabled()
    assert page.locator("button.continue").bounding_box()["height"] >= 56
    _no_sideways_scroll(page)
    _shot(page, "02-question-vi", full_page=False)

    rng = random.Random(5)
    answered = 0
    while page.locator("#app").get_attribute("data-screen") == "question":
        assert answered < MAX_ANSWERS, "the test never ended"
        expect(page.locator(".counter")).to_have_text(f"Câu {answered + 1}")
        _answer(page, rng.randrange(page.locator(".option").count()))
        answered += 1
        if answered == 12:
            _shot(page, "03-question-later-vi", full_page=False)
        if answered == 6 and page.locator("#app").get_attribute("data-screen") == "question":
            estimate = api.get(f"/sessions/{session_id}").json()["progress"]
            shown = page.locator(".progress-track").get_attribute("aria-valuenow")
            assert abs(int(shown) - 100 * min(estimate, 0.95)) <= 0.51

    page.wait_for_selector("#app[data-screen=result]")
    assert page.url.endswith("/ket-qua")
    result = api.get(f"/sessions/{session_id}/result").json()
    assert result["answered"] == answered

    # Levels are numbered by their framework codes 1..5.
    expect(page.locator(".overall-level")).to_have_text(LEVELS_VI[result["overall"]["level"] - 1])
    expect(page.locator(".overall-score")).to_have_text(
        f"{round(result['overall']['score'])} / 100 điểm"
    )
    bars = page.locator(".chart .bar-row")
    expect(bars).to_have_count(len(framework["areas"]))
    assert len(framework["areas"]) == 5
    for area in result["areas"]:
        row = page.locator(f".bar-row[data-area='{area['area']}']")
        expect(row.locator(".bar-name")).to_have_text(area_names[area["area"]])
        expect(row.locator(".bar-value")).to_have_text(
            f"{LEVELS_VI[area['level'] - 1]} · {round(area['score'])} điểm"
        )
        width = row.locator(".bar-fill").bounding_box()["width"]
        track = row.locator(".bar-track").bounding_box()["width"]
        assert abs(width / track - area["score"] / 100) < 0.02
    # What to learn next is the API's advice, in its order (the page decides nothing).
    advice = result["advice"]
    with_steps = [a for a in advice["areas"] if a["steps"]]
    shown = page.locator(".next .advice-area")
    expect(shown).to_have_count(len(with_steps))
    for k, area in enumerate(with_steps[:2]):
        block = shown.nth(k)
        expect(block).to_have_attribute("data-area", area["area"])
        expect(block.locator(".step-goal")).to_have_text([s["goal"]["vi"] for s in area["steps"]])
    note = page.locator(".overall .note")
    expect(note).to_have_count(0 if result["overall"]["settled"] else 1)
    _no_sideways_scroll(page)
    _shot(page, "04-result-vi")

    # The result survives a reload (the page is bookmarkable as /ket-qua).
    page.reload()
    page.wait_for_selector("#app[data-screen=result]")
    expect(page.locator(".overall-level")).to_have_text(LEVELS_VI[result["overall"]["level"] - 1])

    # A new test is only started after asking (the result would be gone).
    page.get_by_role("button", name="Làm bài mới").click()
    page.get_by_role("button", name="Không, xem tiếp kết quả").click()
    expect(page.locator(".overall-level")).to_be_visible()
    page.get_by_role("button", name="Làm bài mới").click()
    page.get_by_role("button", name="Có, làm bài mới").click()
    page.wait_for_selector("#app[data-screen=welcome]")
    assert page.url == base_url + "/"

    # The optional ward and age group were stored with the finished test, with the
    # bins planner releases count.
    session = (
        SERVED["db"]
        .engine.connect()
        .execute(
            sa.select(SESSION.c.ward, SESSION.c.age_group, SESSION.c.report_bins).where(
                SESSION.c.id == uuid.UUID(result["session_id"])
            )
        )
        .one()
    )
    assert (session.ward, session.age_group) == (ward, "65+")
    assert len(session.report_bins) == 6 and session.report_bins.isdigit()


def test_reopening_the_page_resumes_at_the_same_question(
    page: Page, api: httpx.Client, base_url: str
):
    page.goto(base_url + "/")
    _start(page)
    for option in (0, 1, 0):
        _answer(page, option)
    session_id = _session_id(page)
    item_id = _current_item(page)
    question = page.locator(".question-text").inner_text()
    assert api.get(f"/sessions/{session_id}").json()["item"]["id"] == item_id

    page.reload()
    _wait_question(page, 3)
    assert _current_item(page) == item_id
    expect(page.locator(".question-text")).to_have_text(question)
    expect(page.locator(".counter")).to_have_text("Câu 4")
    expect(page.locator(".notice")).to_contain_text("Chào mừng bạn quay lại")
    _shot(page, "05-resumed-vi", full_page=False)

    # Closing the tab and opening the page again later does the same.
    context = page.context
    page.close()
    again = context.new_page()
    again.goto(base_url + "/")
    _wait_question(again, 3)
    assert _current_item(again) == item_id

    # "Start again" asks first, then forgets the session.
    again.get_by_role("button", name="Làm lại từ đầu").click()
    again.get_by_role("button", name="Không, làm tiếp").click()
    assert _current_item(again) == item_id
    again.get_by_role("button", name="Làm lại từ đầu").click()
    expect(again.locator(".confirm")).to_contain_text("Những câu đã trả lời sẽ không được tính nữa")
    again.get_by_role("button", name="Có, làm lại").click()
    again.wait_for_selector("#app[data-screen=welcome]")
    assert again.evaluate("() => localStorage.getItem('nangluc.session')") is None


def test_language_switch_is_remembered_and_translates_the_question(
    browser: Browser, api: httpx.Client, base_url: str
):
    page = _new_page(browser, SMALL_PHONE)
    page.goto(base_url + "/?lang=en")
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Check your digital skills")
    switch = page.locator("#lang-switch")
    expect(switch).to_have_text("Tiếng Việt")
    _no_sideways_scroll(page)
    _shot(page, "06-welcome-en-360px")

    # Remembered without the query string.
    page.goto(base_url + "/")
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    switch.click()
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("h1")).to_have_text("Tự kiểm tra kỹ năng số")
    expect(switch).to_have_text("English")
    assert page.evaluate("() => localStorage.getItem('nangluc.lang')") == "vi"

    _start(page)
    session_id = _session_id(page)
    item_id = _current_item(page)
    vi_item = api.get(f"/sessions/{session_id}", params={"language": "vi"}).json()["item"]
    en_item = api.get(f"/sessions/{session_id}", params={"language": "en"}).json()["item"]
    assert vi_item["id"] == en_item["id"] == item_id
    expect(page.locator(".question-text")).to_have_text(vi_item["text"])

    page.locator(".option").nth(1).click()
    switch.click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".question-text")).to_have_text(en_item["text"])
    expect(page.locator(".counter")).to_have_text("Question 1")
    expect(page.locator(".option").nth(1)).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".option-text")).to_have_text(en_item["options"])
    _no_sideways_scroll(page)
    _shot(page, "07-question-en-360px", full_page=False)
    assert _current_item(page) == item_id
    errors = page.script_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, errors


def test_a_lost_reply_is_retried_safely_and_recorded_once(
    page: Page, api: httpx.Client, base_url: str
):
    page.goto(base_url + "/")
    _start(page)
    session_id = _session_id(page)

    # The answer reaches the server but its reply is lost on the way back.
    def drop_reply(route):
        route.fetch()
        route.abort("connectionreset")

    page.route(re.compile(r".*/answers\?.*"), drop_reply)
    page.locator(".option").nth(0).click()
    page.locator("button.continue").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("mạng đang chập chờn")
    expect(page.locator(".option").nth(0)).to_have_attribute("aria-pressed", "true")
    assert api.get(f"/sessions/{session_id}").json()["answered"] == 1
    _shot(page, "08-network-error-vi", full_page=False)

    page.unroute(re.compile(r".*/answers\?.*"))
    alert.get_by_role("button", name="Thử lại").click()
    _wait_question(page, 1)
    expect(page.locator(".counter")).to_have_text("Câu 2")
    assert api.get(f"/sessions/{session_id}").json()["answered"] == 1


def test_an_answer_sent_elsewhere_first_is_shown_kindly(
    page: Page, api: httpx.Client, base_url: str
):
    page.goto(base_url + "/")
    _start(page)
    session_id = _session_id(page)
    first = _current_item(page)
    # Another tab (or a double tap that got through) answers this question first.
    reply = api.post(f"/sessions/{session_id}/answers", json={"item_id": first, "response": 1})
    assert reply.status_code == 200

    page.locator(".option").nth(0).click()
    page.locator("button.continue").click()
    _wait_question(page, 1)
    assert _current_item(page) != first
    expect(page.locator(".counter")).to_have_text("Câu 2")
    expect(page.locator(".notice")).to_contain_text("Câu trước đã được ghi nhận")
    assert api.get(f"/sessions/{session_id}").json()["answered"] == 1


def test_an_unknown_stored_session_starts_afresh(page: Page, base_url: str):
    page.goto(base_url + "/")
    page.wait_for_selector("#app[data-screen=welcome]")
    page.evaluate(
        "() => localStorage.setItem('nangluc.session', '00000000-0000-4000-8000-000000000000')"
    )
    page.reload()
    page.wait_for_selector("#app[data-screen=welcome]")
    expect(page.locator(".notice")).to_contain_text("Không tìm thấy bài làm trước của bạn")
    assert page.evaluate("() => localStorage.getItem('nangluc.session')") is None


def test_text_grows_with_the_browser_font_size(browser: Browser, base_url: str):
    page = _new_page(browser, SMALL_PHONE)
    page.goto(base_url + "/")
    _start(page)
    before = page.locator(".option").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    # What a reader's "large text" setting does: a larger root font size.
    page.evaluate("() => { document.documentElement.style.fontSize = '150%'; }")
    after = page.locator(".option").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert after == pytest.approx(before * 1.5)
    assert page.locator(".option").first.bounding_box()["height"] >= 56 * 1.5
    _no_sideways_scroll(page)
    _shot(page, "09-large-text-360px", full_page=False)
    errors = page.script_errors  # type: ignore[attr-defined]
    page.context.close()
    assert not errors, errors


def test_the_test_can_be_taken_with_the_keyboard_alone(page: Page, base_url: str):
    page.goto(base_url + "/")
    page.wait_for_selector("#app[data-screen=welcome]")
    page.locator("form.start-form button[type=submit]").focus()
    page.keyboard.press("Enter")
    _wait_question(page, 0)
    # The question is focused so a screen reader reads it, and announced.
    expect(page.locator("#question-text")).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("Câu 1")
    page.keyboard.press("Tab")
    expect(page.locator(".option").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".option").first).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".option").first).to_be_focused()
    # The focus ring is drawn (a reader who uses the keyboard must see it).
    outline = page.locator(".option").first.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    for _ in range(page.locator(".option").count()):
        page.keyboard.press("Tab")
    expect(page.locator("button.continue")).to_be_focused()
    page.keyboard.press("Enter")
    _wait_question(page, 1)
    expect(page.locator("#question-text")).to_be_focused()
    expect(page.locator("#announcer")).to_have_text("Câu 2")


def test_a_failed_start_can_be_retried_without_retyping(page: Page, base_url: str):
    page.goto(base_url + "/")
    page.wait_for_selector("#app[data-screen=welcome]")
    page.route(
        re.compile(r".*/api/v1/sessions$"),
        lambda route: route.fulfill(status=503, json={"detail": "busy", "status_code": 503}),
    )
    page.get_by_label("Phường hoặc xã nơi bạn sống").fill("Xã Bà Nà")
    page.locator("form.start-form button[type=submit]").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Chưa bắt đầu được")
    expect(page.get_by_label("Phường hoặc xã nơi bạn sống")).to_have_value("Xã Bà Nà")
    # The 503 above is ours; leave only the errors we did not cause.
    errors = page.script_errors  # type: ignore[attr-defined]
    errors[:] = [
        e for e in errors if not (e.startswith("503 from POST") and e.endswith("/api/v1/sessions"))
    ]
    page.unroute(re.compile(r".*/api/v1/sessions$"))
    alert.get_by_role("button", name="Thử lại").click()
    _wait_question(page, 0)
    expect(page.locator(".counter")).to_have_text("Câu 1")


# ------------------------------------------------------- results to look at --

SHIPPED = items.load_bank()


def _citizen(theta: float, seed: int):
    """Answers of a simulated citizen whose ability is ``theta`` in every area."""
    bank, rng = SHIPPED.item_bank, np.random.default_rng(seed)

    def choose(item: dict) -> int:
        index = bank.index(item["id"])
        category = int(irt.simulate_responses(bank, np.array([theta]), np.array([index]), rng)[0])
        record = SHIPPED.item(item["id"])
        if record.key is None:
            return category
        return record.key if category else (record.key + 1) % len(item["options"])

    return choose


def _best(item: dict) -> int:
    record = SHIPPED.item(item["id"])
    return record.key if record.key is not None else len(item["options"]) - 1


def _finish(api: httpx.Client, choose) -> dict:
    reply = api.post("/sessions", json={"language": "vi"}).json()
    session_id, item = reply["session_id"], reply["item"]
    while item is not None:
        answer = {"item_id": item["id"], "response": choose(item)}
        item = api.post(f"/sessions/{session_id}/answers", json=answer).json()["item"]
    return api.get(f"/sessions/{session_id}/result").json()


def _theta_of_overall(target: float) -> float:
    """The common theta at which the overall score is ``target`` (bisection)."""
    bank = SHIPPED.item_bank
    low, high = -6.0, 6.0
    for _ in range(60):
        mid = (low + high) / 2
        if area_scores(bank, np.full((1, bank.n_areas), mid)).mean() < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


@pytest.fixture(scope="module")
def results(base_url: str) -> Iterator[dict[str, dict]]:
    """Finished tests of a low, a middle, a top and an unsettled result."""
    with httpx.Client(base_url=base_url + "/api/v1", timeout=10) as api:
        yield _finish_cases(api)


def _finish_cases(api: httpx.Client) -> dict[str, dict]:
    out = {
        "low": _finish(api, lambda item: 0 if SHIPPED.item(item["id"]).key != 0 else 1),
        "top": _finish(api, _best),
    }
    # A citizen in the middle of the scale; most such tests settle (the server's
    # seeds vary the items, so take the first that does).
    for seed in range(10):
        result = _finish(api, _citizen(0.0, seed=seed))
        if result["overall"]["settled"]:
            out["middle"] = result
            break
    # A citizen right at a level boundary often ends at the maximum length unsettled.
    at_cut = _theta_of_overall(40.0)
    for seed in range(30):
        result = _finish(api, _citizen(at_cut, seed=100 + seed))
        if not result["overall"]["settled"]:
            out["unsettled"] = result
            break
    assert "unsettled" in out, "no unsettled result in 30 tests at a level boundary"
    assert out["low"]["overall"]["level"] == 1 and out["top"]["overall"]["level"] == 5
    assert 2 <= out["middle"]["overall"]["level"] <= 4
    return {case: out[case] for case in ("low", "middle", "top", "unsettled")}


@pytest.mark.parametrize(
    ("language", "viewport"), [("vi", PHONE), ("en", PHONE), ("vi", SMALL_PHONE)]
)
def test_result_pages_say_what_the_measurement_supports(
    browser: Browser, base_url: str, results: dict[str, dict], language: str, viewport: dict
):
    names = LEVELS_VI if language == "vi" else LEVELS_EN
    for case, result in results.items():
        page = _new_page(browser, viewport)
        page.goto(base_url + "/")
        page.evaluate(
            "([id, lang]) => { localStorage.setItem('nangluc.session', id);"
            " localStorage.setItem('nangluc.lang', lang); }",
            [result["session_id"], language],
        )
        page.goto(base_url + "/ket-qua")
        page.wait_for_selector("#app[data-screen=result]")
        overall = result["overall"]
        expect(page.locator(".overall-level")).to_have_text(names[overall["level"] - 1])
        low, high = (round(x) for x in overall["interval"])
        expect(page.locator(".overall .interval")).to_contain_text(f"{low}")
        expect(page.locator(".overall .interval")).to_contain_text(f"{high}")
        note = page.locator(".overall .note")
        if overall["settled"]:
            expect(note).to_have_count(0)
        else:
            n = round(10 * overall["probability"])
            expect(note).to_contain_text(
                f"khoảng {n} trên 10" if language == "vi" else f"about a {n} in 10"
            )
            if result["stop_reason"] == "max_items":
                expect(note).to_contain_text("tối đa" if language == "vi" else "largest number")
        advice = result["advice"]
        heading = page.locator(".next h2")
        if advice["top_overall"]:
            expect(heading).to_have_text(
                "Chia sẻ kỹ năng của bạn" if language == "vi" else "Share your skills"
            )
            expect(page.locator(".next")).to_contain_text(advice["help"][language])
        else:
            expect(heading).to_have_text(
                "Nên học gì tiếp theo?" if language == "vi" else "What to learn next?"
            )
            first = next(a for a in advice["areas"] if a["steps"])
            expect(page.locator(".advice-area").first.locator(".step-goal").first).to_have_text(
                first["steps"][0]["goal"][language]
            )
        _no_sideways_scroll(page)
        width = "" if viewport is PHONE else "-360px"
        _shot(page, f"result-{case}-{language}{width}")
        assert not page.script_errors, page.script_errors  # type: ignore[attr-defined]
        page.context.close()


# ---------------------------------------------------------------- read aloud --

SPEECH_STUB = """
(voices => {
  const listeners = [];
  window.__spoken = [];
  window.__cancelled = 0;
  window.__voices = voices;
  window.SpeechSynthesisUtterance = class {
    constructor(text) { this.text = text; this.lang = ""; this.voice = null; this.rate = 1; }
  };
  const synth = {
    getVoices: () => window.__voices,
    speak: (u) => {
      window.__spoken.push({ text: u.text, lang: u.lang, voice: u.voice && u.voice.name, rate: u.rate });
    },
    cancel: () => { window.__cancelled += 1; },
    addEventListener: (name, fn) => { if (name === "voiceschanged") listeners.push(fn); },
  };
  window.__addVoices = (more) => {
    window.__voices = window.__voices.concat(more);
    listeners.forEach((fn) => fn());
  };
  Object.defineProperty(window, "speechSynthesis", { value: synth, configurable: true });
})(%s)
"""


def _speech_page(browser: Browser, voices: list[dict]) -> Page:
    page = _new_page(browser)
    page.add_init_script(SPEECH_STUB % json.dumps(voices))
    return page


def test_read_aloud_speaks_the_question_and_options_with_a_vietnamese_voice(
    browser: Browser, base_url: str
):
    page = _speech_page(
        browser,
        [{"name": "English", "lang": "en-US"}, {"name": "Tiếng Việt", "lang": "vi-VN"}],
    )
    page.goto(base_url + "/")
    _start(page)
    button = page.get_by_role("button", name="Nghe đọc câu hỏi")
    expect(button).to_be_visible()
    assert button.bounding_box()["height"] >= 48
    question = page.locator(".question-text").inner_text()
    options = page.locator(".option-text").all_inner_texts()
    button.click()
    spoken = page.evaluate("() => window.__spoken")
    assert len(spoken) == 1
    assert spoken[0]["lang"] == "vi-VN" and spoken[0]["voice"] == "Tiếng Việt"
    assert spoken[0]["text"].startswith(question)
    for n, option in enumerate(options, start=1):
        assert f"Lựa chọn {n}: {option}." in spoken[0]["text"]
    # While it reads, the same button stops it; answering stops it too.
    expect(page.get_by_role("button", name="Dừng đọc")).to_have_attribute("aria-pressed", "true")
    _shot(page, "question-read-aloud-vi", full_page=False)
    before = page.evaluate("() => window.__cancelled")
    _answer(page, 0)
    assert page.evaluate("() => window.__cancelled") > before
    expect(page.get_by_role("button", name="Nghe đọc câu hỏi")).to_be_visible()
    assert not page.script_errors  # type: ignore[attr-defined]
    page.context.close()


def test_read_aloud_is_hidden_without_a_voice_of_the_pages_language(
    browser: Browser, base_url: str
):
    page = _speech_page(browser, [{"name": "English", "lang": "en-US"}])
    page.goto(base_url + "/")
    _start(page)
    expect(page.locator(".read-aloud")).to_have_count(0)
    # A Vietnamese voice that arrives later shows the button.
    page.evaluate("() => window.__addVoices([{ name: 'Tiếng Việt', lang: 'vi-VN' }])")
    expect(page.get_by_role("button", name="Nghe đọc câu hỏi")).to_be_visible()
    # The English page reads with an English voice only.
    page.locator("#lang-switch").click()
    expect(page.get_by_role("button", name="Read the question aloud")).to_be_visible()
    page.get_by_role("button", name="Read the question aloud").click()
    spoken = page.evaluate("() => window.__spoken")
    assert spoken[-1]["lang"] == "en-US" and "Option 1: " in spoken[-1]["text"]
    page.context.close()

    bare = _speech_page(browser, [])
    bare.goto(base_url + "/?lang=en")
    _start(bare)
    expect(bare.locator(".read-aloud")).to_have_count(0)
    bare.context.close()
