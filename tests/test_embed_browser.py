"""The citizen page embedded in another site's page (Chromium): iframe, postMessage, CORS.

Issue #14, section 4. The app runs with one embedding origin on its
allow-list (``NANGLUC_EMBED_ORIGINS``): a portal page served by this test on
another port of 127.0.0.1. A second portal, on a third port, is not on the
list. The portal pages are plain HTML served here; the browser checks what
only a browser checks: ``frame-ancestors``, ``postMessage``'s target origin,
and CORS.

Skipped when ``/usr/bin/chromium`` is missing, unless ``NANGLUC_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("NANGLUC_REQUIRE_BROWSER") != "1":
    pytest.skip("/usr/bin/chromium is missing", allow_module_level=True)

from playwright.sync_api import Browser, Frame, Page, sync_playwright  # noqa: E402
from test_readme_embed import code_blocks  # noqa: E402

from nangluc.service.app import create_app  # noqa: E402
from nangluc.service.db import SESSION  # noqa: E402
from nangluc.service.settings import Settings  # noqa: E402
from service_fixtures import CHROMIUM_ARGS, bank_dict, served_in_thread, write_bank  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
MAX_ANSWERS = 60
#: The origins the README's snippet names, replaced by the test's own.
README_APP = "https://nangluc.example.vn"
README_PORTAL = "https://portal.example.vn"


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _portal_page(app: str, parent: str, *, embed: bool = True) -> str:
    """A portal's page: the README's snippet as written, plus a log of every message.

    ``showLevel`` (the portal's own display in the README) records what the
    snippet passes it; ``received`` records every message that arrives.
    """
    (snippet,) = code_blocks("html")
    snippet = snippet.replace(README_APP, app).replace(README_PORTAL, parent)
    if not embed:
        snippet = snippet.replace(f"{app}/?embed=1&origin={parent}", f"{app}/")
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>Cổng thông tin</title></head>
<body>
<h1>Cổng dịch vụ công</h1>
<script>
  window.shown = [];
  window.received = [];
  function showLevel(result) {{ window.shown.push(result); }}
  window.addEventListener("message", (event) => {{
    window.received.push({{ origin: event.origin, data: event.data }});
  }});
</script>
{snippet}
</body></html>"""


class _Portals:
    """Two portal sites on their own ports: one on the allow-list, one not."""

    def __init__(self) -> None:
        self.sockets = [_listening_socket(), _listening_socket()]
        self.allowed, self.stranger = (
            f"http://127.0.0.1:{s.getsockname()[1]}" for s in self.sockets
        )
        self.app = ""
        self.servers: list[ThreadingHTTPServer] = []

    def start(self, app: str) -> None:
        self.app = app
        for sock, origin in zip(self.sockets, (self.allowed, self.stranger), strict=True):
            handler = _handler(self, origin)
            sock.listen()
            server = ThreadingHTTPServer(sock.getsockname(), handler, bind_and_activate=False)
            server.socket.close()
            server.socket = sock
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _handler(portals: _Portals, origin: str) -> type[BaseHTTPRequestHandler]:
    """Serves the portal page of ``origin`` (``/``: the embed snippet; ``/plain``: the ordinary page)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            page = _portal_page(portals.app, origin, embed=self.path != "/plain")
            body = page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _Portals, object]]:
    """(the app's base URL, the two portals, the app's database handle)."""
    portals = _Portals()
    directory = tmp_path_factory.mktemp("embed-browser")
    bank = write_bank(directory / "bank.json", bank_dict(per_area=6))
    app = create_app(
        Settings(
            database_url=f"sqlite:///{directory / 'nangluc.db'}",
            bank_path=str(bank),
            embed_origins=(portals.allowed,),
        )
    )
    with served_in_thread(app) as base:
        portals.start(base)
        yield base, portals, app.state.db
        portals.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 480, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    page.console = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.console.append(m.text))  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.console.append(f"pageerror: {e}"))  # type: ignore[attr-defined]
    yield page
    context.close()


def _frame(page: Page) -> Frame:
    frame = page.wait_for_selector("#nangluc").content_frame()
    assert frame is not None
    return frame


def _take_the_test(frame: Frame) -> int:
    frame.wait_for_selector("#app[data-screen=welcome]")
    frame.locator("form.start-form button[type=submit]").click()
    answered = 0
    while True:
        frame.wait_for_selector(
            f"#app[data-screen=result], #app[data-screen=question][data-answered='{answered}']"
            "[data-busy=false]"
        )
        if frame.locator("#app").get_attribute("data-screen") == "result":
            return answered
        options = frame.locator(".option")
        options.nth(answered % options.count()).click()
        frame.locator("button.continue").click()
        answered += 1
        assert answered <= MAX_ANSWERS


def _session_ids(db) -> list[str]:
    with db.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(sa.select(SESSION.c.id))]


def test_an_allowed_portal_frames_the_test_and_receives_the_result(
    page: Page, sites: tuple[str, _Portals, object]
) -> None:
    base, portals, db = sites
    before = set(_session_ids(db))
    page.goto(portals.allowed + "/")
    frame = _frame(page)
    answered = _take_the_test(frame)
    assert answered >= 5
    page.wait_for_function("() => window.received.length > 0", timeout=10_000)
    time.sleep(0.3)  # anything sent twice would have arrived by now
    received = page.evaluate("() => window.received")
    assert len(received) == 1, received
    message = received[0]
    assert message["origin"] == base  # it came from the framed test
    data = message["data"]
    assert data["type"] == "nangluc:result" and data["version"] == 1
    assert set(data) == {"type", "version", "result"}

    (session_id,) = set(_session_ids(db)) - before
    # Only the result: never the session id (which lets its holder act on the test).
    assert "session_id" not in data["result"]
    assert session_id not in json.dumps(data)
    # The same result the API gives the session's holder, in the page's language.
    result = httpx.get(f"{base}/api/v1/sessions/{session_id}/result?language=vi").json()
    del result["session_id"]
    assert data["result"] == result
    assert data["result"]["answered"] == answered
    assert data["result"]["overall"]["level"] in (1, 2, 3, 4, 5)
    # The README's listener passed it on to the portal's display.
    assert page.evaluate("() => window.shown") == [data["result"]]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "embed-portal-result.png"), full_page=True)
    assert not [m for m in page.console if "pageerror" in m], page.console  # type: ignore[attr-defined]


def test_a_portal_not_on_the_list_cannot_frame_the_test(
    page: Page, sites: tuple[str, _Portals, object]
) -> None:
    base, portals, db = sites
    before = _session_ids(db)
    page.goto(portals.stranger + "/")
    page.wait_for_selector("#nangluc")
    page.wait_for_timeout(1500)
    child = next((f for f in page.frames if f is not page.main_frame), None)
    # Chromium replaces a refused frame with an error page: no citizen page in it.
    assert child is None or child.evaluate("() => document.getElementById('app')") is None
    assert page.evaluate("() => window.received") == []
    assert page.evaluate("() => window.shown") == []
    assert any("frame-ancestors" in m for m in page.console), page.console  # type: ignore[attr-defined]
    assert _session_ids(db) == before


def test_the_ordinary_page_cannot_be_framed_even_by_an_allowed_portal(
    page: Page, sites: tuple[str, _Portals, object]
) -> None:
    _, portals, _ = sites
    page.goto(portals.allowed + "/plain")
    page.wait_for_selector("#nangluc")
    page.wait_for_timeout(1500)
    child = next((f for f in page.frames if f is not page.main_frame), None)
    assert child is None or child.evaluate("() => document.getElementById('app')") is None
    assert any("frame-ancestors 'none'" in m for m in page.console), page.console  # type: ignore[attr-defined]


_CALL_THE_API = """async (base) => {
  try {
    const started = await fetch(base + "/api/v1/sessions", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({language: "en"}),
    });
    const body = await started.json();
    return {status: started.status, location: started.headers.get("Location"),
            id: body.session_id};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


def test_browser_code_on_an_allowed_portal_calls_the_api(
    page: Page, sites: tuple[str, _Portals, object]
) -> None:
    base, portals, _ = sites
    page.goto(portals.allowed + "/plain")
    reply = page.evaluate(_CALL_THE_API, base)
    assert reply.get("status") == 201, reply
    assert reply["location"] == f"/api/v1/sessions/{reply['id']}"  # an exposed header


def test_browser_code_elsewhere_is_refused_by_cors(
    page: Page, sites: tuple[str, _Portals, object]
) -> None:
    base, portals, db = sites
    before = _session_ids(db)
    page.goto(portals.stranger + "/plain")
    reply = page.evaluate(_CALL_THE_API, base)
    assert "blocked" in reply, reply
    assert _session_ids(db) == before  # the preflight failed: nothing was started
