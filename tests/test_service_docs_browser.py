"""The API documentation pages work offline, under their Content-Security-Policy (Chromium).

Finding 9 of issue #12: ``/schema/swagger`` and ``/schema/redoc`` loaded
unpinned scripts from CDNs, on the origin that keeps the citizen's session id
in localStorage. The page is now served from files shipped in the package; the
browser is allowed to reach nothing but the server, and any request elsewhere
or any CSP violation fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service_fixtures import CHROMIUM_ARGS, ServerProcess, bank_dict, write_bank

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("NANGLUC_REQUIRE_BROWSER") != "1":
    pytest.skip("/usr/bin/chromium is missing", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def test_swagger_ui_renders_from_local_assets_with_no_outside_request(tmp_path: Path) -> None:
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    with ServerProcess(f"sqlite:///{tmp_path / 'docs.db'}", bank) as server, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            outside: list[str] = []
            problems: list[str] = []

            def route(request_route) -> None:
                host = urlsplit(request_route.request.url).hostname
                if host in ("127.0.0.1", "localhost"):
                    request_route.continue_()
                else:  # no internet: the page must not need it
                    outside.append(request_route.request.url)
                    request_route.abort()

            page.route("**/*", route)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            # /schema (what the README and the issue name) and /schema/swagger.
            for path in ("/schema", "/schema/swagger"):
                reply = page.goto(server.base + path)
                assert reply is not None and reply.status == 200, path
                assert "script-src 'self'" in reply.headers["content-security-policy"]
                expect(page.locator(".swagger-ui .info .title")).to_contain_text("nangluc")
                expect(page.locator(".opblock-summary-path").first).to_be_visible()
                paths = page.locator(".opblock-summary-path").all_inner_texts()
                assert any("/api/v1/sessions" in p for p in paths), (path, paths)
                assert any("/api/v1/score" in p for p in paths), (path, paths)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "docs-swagger.png"))
            assert outside == [], outside
            assert not [p for p in problems if "Content Security Policy" in p], problems
            assert not [p for p in problems if "Refused" in p], problems
        finally:
            browser.close()
