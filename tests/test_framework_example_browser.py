"""The citizen page on the second framework, in headless Chromium (issue #14, §1).

A city sets the example up as documented in ``items/data/examples/README.md``:
``nangluc bank add`` and ``nangluc bank activate`` on a fresh database, then
the service serves it. The page shows the example's own level names, its three
areas and its cut scores, all read from the API.

Skipped when ``/usr/bin/chromium`` is missing, unless ``NANGLUC_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("NANGLUC_REQUIRE_BROWSER") != "1":
    pytest.skip(
        "/usr/bin/chromium is missing (set NANGLUC_REQUIRE_BROWSER=1 to fail instead)",
        allow_module_level=True,
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from nangluc import items  # noqa: E402
from nangluc.cli import main as nangluc  # noqa: E402
from nangluc.service.app import create_app  # noqa: E402
from nangluc.service.settings import Settings  # noqa: E402
from service_fixtures import CHROMIUM_ARGS, served_in_thread  # noqa: E402

LEVELS_VI = ("Cần hỗ trợ", "Nắm cơ bản", "Vững vàng", "Làm chủ")
AREAS_VI = {
    "1": "Tài khoản và mật khẩu",
    "2": "Phòng tránh lừa đảo trực tuyến",
    "3": "Trẻ em và quyền riêng tư gia đình",
}
VERSION = items.load_bank(items.HOUSEHOLD_SAFETY_BANK_PATH).version


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    """The example bank added and activated by the CLI on a fresh database, then served."""
    url = f"sqlite:///{tmp_path_factory.mktemp('household-page') / 'nangluc.db'}"
    runner = CliRunner()
    added = runner.invoke(
        nangluc, ["bank", "add", str(items.HOUSEHOLD_SAFETY_BANK_PATH), "--database-url", url]
    )
    assert added.exit_code == 0, added.output
    activated = runner.invoke(nangluc, ["bank", "activate", VERSION, "--database-url", url])
    assert activated.exit_code == 0, activated.output
    assert f"bank {VERSION} is active" in activated.output
    app = create_app(Settings(database_url=url))
    with served_in_thread(app) as base:
        yield base
    app.state.db.dispose()


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="vi-VN"
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "response",
            lambda r: errors.append(f"{r.status} from {r.url}") if r.status >= 500 else None,
        )
        yield page
        context.close()
        browser.close()
        assert not errors, errors


def test_the_page_shows_the_examples_levels_and_three_areas(page: Page, base_url: str):
    with httpx.Client(base_url=base_url + "/api/v1", timeout=10) as api:
        assert api.get("/framework").json()["bank_version"] == VERSION
        page.goto(base_url + "/")
        page.wait_for_selector("#app[data-screen=welcome]")
        expect(page.locator("#footer-text")).to_contain_text("Khung an toàn số cho gia đình")
        page.locator("form.start-form button[type=submit]").click()
        page.wait_for_selector("#app[data-screen=question][data-busy=false]")
        rng = random.Random(7)
        for _ in range(60):
            if page.locator("#app").get_attribute("data-screen") != "question":
                break
            answered = int(page.locator("#app").get_attribute("data-answered"))
            page.locator(".option").nth(rng.randrange(page.locator(".option").count())).click()
            page.locator("button.continue").click()
            page.wait_for_selector(
                "#app[data-screen=result], "
                f"#app[data-screen=question][data-answered='{answered + 1}'][data-busy=false]"
            )
        page.wait_for_selector("#app[data-screen=result]")
        session_id = page.evaluate("() => localStorage.getItem('nangluc.session')")
        result = api.get(f"/sessions/{session_id}/result").json()
        framework = api.get("/framework").json()

    overall = result["overall"]
    expect(page.locator(".overall-level")).to_have_text(LEVELS_VI[overall["level"] - 1])
    # What the level means is the framework's own description of it.
    description = framework["levels"][overall["level"] - 1]["description"]["vi"]
    expect(page.locator(".overall-meaning")).to_have_text(description)
    expect(page.locator(".result h2").first).to_have_text("Điểm theo 3 lĩnh vực")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "household-result-vi.png"), full_page=True)
    bars = page.locator(".chart .bar-row")
    expect(bars).to_have_count(3)
    for area in result["areas"]:
        row = page.locator(f".bar-row[data-area='{area['area']}']")
        expect(row.locator(".bar-name")).to_have_text(AREAS_VI[area["area"]])
        expect(row.locator(".bar-value")).to_have_text(
            f"{LEVELS_VI[area['level'] - 1]} · {round(area['score'])} điểm"
        )
        # Tick marks at the example's cut scores (30, 55, 80), not at 20-point bands.
        ticks = row.locator(".bar-tick")
        expect(ticks).to_have_count(3)
        lefts = [ticks.nth(i).evaluate("e => e.style.left") for i in range(3)]
        assert lefts == ["30%", "55%", "80%"]
    # The top level's bar gets the last colour, the lowest level's the first.
    shade = page.locator(".bar-row .bar-fill").first.get_attribute("class")
    level = result["areas"][0]["level"]
    assert f"level-{[1, 2, 4, 5][level - 1]}" in shade
    # In English: the framework's English level names, from the API.
    page.locator("#lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    names_en = ("Needs support", "Aware", "Confident", "Leading")
    expect(page.locator(".overall-level")).to_have_text(names_en[overall["level"] - 1])
    expect(page.locator(".result h2").first).to_have_text("Scores in the 3 areas")


# ------------------------------------------------------------ planner page
PLANNER_KEY = "household-planner-key-3d7"


@pytest.fixture(scope="module")
def planner_url(tmp_path_factory) -> Iterator[str]:
    """The example bank served with simulated finished tests of a past quarter."""
    from datetime import UTC, datetime

    import numpy as np

    from nangluc.engine import CITIZEN_TEST
    from nangluc.service import synthetic
    from nangluc.service.db import BANK
    from nangluc.simulations import draw_population

    directory = tmp_path_factory.mktemp("household-planner")
    settings = Settings(
        database_url=f"sqlite:///{directory / 'planner.db'}",
        bank_path=str(items.HOUSEHOLD_SAFETY_BANK_PATH),
        report_simulees=1500,
    ).with_planner_keys(PLANNER_KEY)
    app = create_app(settings)
    db = app.state.db
    with db.engine.begin() as conn:
        conn.execute(BANK.update().values(created=datetime(2026, 4, 2, tzinfo=UTC)))
    bank = db.banks.get(VERSION).bank
    rng = np.random.default_rng(8)
    rows, _ = synthetic.simulated_rows(
        bank,
        CITIZEN_TEST,
        draw_population(400, bank.n_areas, 0.7, rng),
        rng,
        finished=datetime(2026, 5, 12, 3, 0, tzinfo=UTC),
        ward="Phường Hải Châu",
    )
    synthetic.insert_rows(db.engine, rows)
    with served_in_thread(app) as base:
        yield base
    db.dispose()


def test_the_planner_page_shows_the_examples_levels(page: Page, planner_url: str):
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(planner_url + "/planner")
    page.get_by_label("Khóa báo cáo", exact=True).fill(PLANNER_KEY)
    page.get_by_role("button", name="Mở báo cáo").click()
    results = page.locator("#results")
    expect(results.get_by_role("heading", name="Phường Hải Châu", exact=True)).to_be_visible(
        timeout=60_000
    )
    # The report's framework and its four levels with their cut scores.
    expect(results.locator("p.framework")).to_contain_text(
        "Khung năng lực: Khung an toàn số cho gia đình (ví dụ) (4 mức)"
    )
    legend = results.locator("ul.legend li")
    expect(legend).to_have_count(4)
    bands = ("0–30", "30–55", "55–80", "80–100")
    for k, (name, band) in enumerate(zip(LEVELS_VI, bands, strict=True)):
        expect(legend.nth(k)).to_have_text(f"{k + 1} · {name} ({band})")
    chart = results.locator("svg.chart").first
    assert chart.locator("rect").count() == 4 and chart.locator("line.interval").count() == 12
    # The top level gets the last colour.
    assert "l5" in chart.locator("rect").nth(3).get_attribute("class")
    # "At or above" offers the example's levels, by name.
    options = page.get_by_label("Tỷ lệ đạt từ mức", exact=True).locator("option")
    expect(options).to_have_count(5)  # "none" and the four levels
    expect(options.nth(4)).to_have_text("4 · Làm chủ")
    page.screenshot(path=str(SCREENSHOTS / "household-planner-vi.png"), full_page=True)
    page.get_by_label("Chia theo", exact=True).select_option("all")
    page.get_by_label("Tỷ lệ đạt từ mức", exact=True).select_option("3")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(results).to_contain_text("Đạt từ mức 3 trở lên")
