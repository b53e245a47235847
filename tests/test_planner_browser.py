"""The planners' report page in headless Chromium: key, bars with intervals, cohorts, CSV.

The real app runs under uvicorn with a planner key, on a SQLite file holding
simulated finished tests of a past quarter and a training class's tests
before and after its course. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("NANGLUC_REQUIRE_BROWSER") != "1":
    pytest.skip("/usr/bin/chromium is missing", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from nangluc.engine import CITIZEN_TEST  # noqa: E402
from nangluc.service import cohorts, synthetic  # noqa: E402
from nangluc.service.app import create_app  # noqa: E402
from nangluc.service.db import BANK, COHORT  # noqa: E402
from nangluc.service.settings import Settings  # noqa: E402
from nangluc.simulations import draw_population  # noqa: E402
from service_fixtures import CHROMIUM_ARGS, bank_dict, served_in_thread, write_bank  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
KEY = "planner-browser-key-5e1"
IN_Q2 = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)
_SERVED: dict = {}


def _fill(db) -> str:
    with db.engine.begin() as conn:
        conn.execute(BANK.update().values(created=datetime(2026, 4, 2, tzinfo=UTC)))
    with db.engine.connect() as conn:
        bank = db.banks.get(db.banks.active_version(conn)).bank
    rng = np.random.default_rng(21)
    rows = []
    for ward, mean, n in (
        ("Phường Hải Châu", -0.8, 600),
        ("Xã Hòa Vang", 0.3, 500),
        ("Phường Sơn Trà", 0.0, 350),
    ):
        ages = list(rng.choice(["25-34", "45-54", "65+"], n))
        part, _ = synthetic.simulated_rows(
            bank,
            CITIZEN_TEST,
            draw_population(n, bank.n_areas, 0.7, rng, mean=mean),
            rng,
            finished=IN_Q2,
            ward=ward,
            age_group=ages,
        )
        rows += part
    code = cohorts.create_cohort(db, "=Lớp kỹ năng số phường Hải Châu", days=30)["code"]
    for phase, mean in (("before", -1.2), ("after", 0.0)):
        part, _ = synthetic.simulated_rows(
            bank,
            CITIZEN_TEST,
            draw_population(300, bank.n_areas, 0.7, rng, mean=mean),
            rng,
            finished=IN_Q2,
            ward="Hải Châu",
            cohort=code,
            phase=phase,
        )
        rows += part
    synthetic.insert_rows(db.engine, rows)
    with db.engine.begin() as conn:
        conn.execute(
            COHORT.update().values(
                created=IN_Q2 - timedelta(days=3), closes=IN_Q2 + timedelta(days=1)
            )
        )
    return code


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, str]]:
    directory = tmp_path_factory.mktemp("planner")
    bank = write_bank(directory / "bank.json", bank_dict())
    settings = Settings(
        database_url=f"sqlite:///{directory / 'planner.db'}",
        bank_path=str(bank),
        report_simulees=2000,
    ).with_planner_keys(KEY)
    app = create_app(settings)
    _SERVED["db"] = app.state.db
    code = _fill(app.state.db)
    with served_in_thread(app) as base:
        yield base, code


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1100, "height": 900}, locale="vi-VN", accept_downloads=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert not errors, errors
    context.close()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000


def test_planner_page_reports_bars_cohorts_and_csv(served, page: Page) -> None:
    base, code = served
    page.goto(base + "/planner")
    expect(page.get_by_role("heading", name="Nhập khóa báo cáo")).to_be_visible()
    # A wrong key is refused with a clear message, and nothing is shown.
    page.get_by_label("Khóa báo cáo", exact=True).fill("not-the-key")
    page.get_by_role("button", name="Mở báo cáo").click()
    expect(page.get_by_role("alert")).to_have_text("Khóa không đúng hoặc không phải khóa báo cáo.")
    page.get_by_label("Khóa báo cáo", exact=True).fill(KEY)
    page.get_by_role("button", name="Mở báo cáo").click()

    # Ward report: one chart per shown ward, five bars each with an interval.
    results = page.locator("#results")
    expect(results.get_by_role("heading", name="Phường Hải Châu", exact=True)).to_be_visible(
        timeout=60_000
    )
    expect(results).to_contain_text("ε = 1")
    charts = results.locator("svg.chart")
    assert charts.count() == 3  # Hải Châu, Sơn Trà, Hòa Vang; empty wards are withheld
    first = charts.first
    assert first.locator("rect").count() == 5 and first.locator("line.interval").count() == 15
    expect(first).to_have_attribute(
        "aria-label", "Tỷ lệ theo mức của Phường Hải Châu; vạch đen là khoảng tin cậy 95%"
    )
    expect(results).to_contain_text("nhóm không hiện tỷ lệ")
    _shot(page, "planner-01-wards-vi")

    # The whole city, at or above Khá.
    page.get_by_label("Chia theo", exact=True).select_option("all")
    page.get_by_label("Tỷ lệ đạt từ mức", exact=True).select_option("3")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(results).to_contain_text("Đạt từ mức 3 trở lên")
    # A competence is read through its area: the report says so.
    page.get_by_label("Chỉ số", exact=True).select_option("5.2")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(results).to_contain_text("năng lực thành phần")

    # The training class: before and after, and the change with its interval.
    page.get_by_label("Chia theo", exact=True).select_option("cohort")
    page.get_by_label("Chỉ số", exact=True).select_option("overall")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(results.locator("article.cohort")).to_have_count(1)
    expect(results).to_contain_text("Thay đổi: Điểm trung bình thay đổi +")
    cohort_chart = results.locator("article.cohort svg.chart")
    assert cohort_chart.locator("rect.before").count() == 5
    assert cohort_chart.locator("rect.after").count() == 5
    _shot(page, "planner-02-cohort-vi")

    # The CSV: what the report shows, the class's name escaped against formulas.
    with page.expect_download() as download:
        page.get_by_role("button", name="Tải CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["label"] for r in rows} == {"'=Lớp kỹ năng số phường Hải Châu"}
    assert {r["phase"] for r in rows} == {"before", "after", "change"}

    # A new class, with its two links.
    page.get_by_label("Tên lớp", exact=True).fill("Lớp Sơn Trà tháng 12")
    page.get_by_role("button", name="Tạo lớp").click()
    expect(page.locator("table.cohorts")).to_contain_text("Lớp Sơn Trà tháng 12")
    expect(page.locator("table.cohorts")).to_contain_text("/?cohort=")
    expect(page.locator("table.cohorts")).to_contain_text(code)

    # English.
    page.get_by_role("button", name="English").click()
    expect(
        page.get_by_role("heading", name="Digital competence reports for planners")
    ).to_be_visible()
    expect(results).to_contain_text("Before the course")
    _shot(page, "planner-03-cohort-en")

    # Forgetting the key leaves nothing on screen.
    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_role("heading", name="Enter your report key")).to_be_visible()
    expect(page.locator("#results")).to_have_count(0)


def test_planner_page_on_a_phone(served, browser) -> None:
    base, _ = served
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(base + "/planner?lang=en")
    page.get_by_label("Report key", exact=True).fill(KEY)
    page.get_by_role("button", name="Open reports").click()
    expect(page.locator("svg.chart").first).to_be_visible(timeout=60_000)
    _shot(page, "planner-04-wards-phone-en")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right))"
        ".slice(0, 8)"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, (width, wide)  # no sideways scrolling
    context.close()


def test_a_class_link_tags_the_test_and_an_expired_one_does_not_block_it(served, browser) -> None:
    base, _ = served
    from nangluc.service.db import SESSION

    db = _SERVED["db"]
    code = cohorts.create_cohort(db, "Lớp Hòa Vang", days=10)["code"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/?cohort={code.lower()}&phase=after")
    expect(page.locator(".cohort-note")).to_contain_text(f"mã {code}, làm sau khóa học")
    assert "cohort" not in page.url  # out of the address bar: a reload tags nothing new
    _shot(page, "planner-05-class-link-vi")
    page.locator("form.start-form button[type=submit]").click()
    page.wait_for_selector("#app[data-screen=question]")
    with db.engine.connect() as conn:
        tagged = conn.execute(
            sa.select(SESSION.c.cohort, SESSION.c.cohort_phase).where(SESSION.c.cohort == code)
        ).all()
    assert [tuple(t) for t in tagged] == [(code, "after")]
    context.close()

    # A closed class's link still lets the citizen take the test, and says why it
    # does not count for the class.
    cohorts.close_cohort(db, code)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/?cohort={code}&phase=before")
    page.locator("form.start-form button[type=submit]").click()
    page.wait_for_selector("#app[data-screen=question]")
    expect(page.get_by_text("Liên kết của lớp học đã hết hạn")).to_be_visible()
    with db.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).where(SESSION.c.cohort == code)).scalar()
    assert count == 1
    context.close()
