"""The citizen page's routes, headers and assets (no browser needed)."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from nangluc.service.pages import CONTENT_SECURITY_POLICY, STATIC_DIR, page_handlers, render_page

ASSETS = sorted(p for p in STATIC_DIR.iterdir() if p.is_file())
TEXT_ASSETS = [p for p in ASSETS if p.suffix in {".html", ".js", ".css", ".json", ".svg"}]


@pytest.fixture(scope="module")
def client():
    with TestClient(app=Litestar(route_handlers=page_handlers())) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/ket-qua"])
def test_page_is_served_as_html_in_vietnamese(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in response.text
    assert '<script type="module" src="/static/app.js">' in response.text
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("query", "lang"),
    [("?lang=en", "en"), ("?lang=vi", "vi"), ("?lang=xx", "vi"), ("?lang=", "vi")],
)
def test_lang_query_sets_the_html_lang_attribute(client, query, lang):
    response = client.get("/" + query)
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in response.text
    assert response.text.count("<html") == 1


def test_render_page_never_injects_what_it_is_given():
    assert '<html lang="vi">' in render_page('"><script>alert(1)</script>')
    assert "alert(1)" not in render_page('"><script>alert(1)</script>')


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript"),
        ("messages.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
        ("test-length.json", "application/json"),
    ],
)
def test_assets_are_served_with_their_types(client, name, content_type):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert "no-cache" in response.headers["cache-control"]


@pytest.mark.parametrize(
    "path", ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/nope.js"]
)
def test_nothing_outside_the_static_folder_is_served(client, path):
    assert client.get(path).status_code == 404


def test_pages_are_left_out_of_the_openapi_schema():
    app = Litestar(route_handlers=page_handlers())
    assert app.openapi_schema.paths in (None, {})


@pytest.mark.parametrize("asset", TEXT_ASSETS, ids=lambda p: p.name)
def test_assets_are_utf8_nfc_text(asset):
    text = asset.read_bytes().decode("utf-8")
    # Decomposed accents render badly on some phones and break search: NFC only.
    assert unicodedata.is_normalized("NFC", text), f"{asset.name} is not NFC"


@pytest.mark.parametrize("asset", TEXT_ASSETS, ids=lambda p: p.name)
def test_assets_load_nothing_from_the_internet(asset):
    text = asset.read_text(encoding="utf-8")
    # The only absolute URL allowed is the SVG namespace, which is not fetched.
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
    urls.discard("http://www.w3.org/2000/svg")
    assert not urls, f"{asset.name} refers to {sorted(urls)}"


def test_ward_suggestions_and_the_hint_come_from_the_ward_list():
    """Finding: the page's hint and its suggestion list disagreed ("Hải Châu" / "Phường Hải
    Châu"); the page now suggests the ward list's own names, and its examples are two of them."""
    from nangluc.service.wards import load_wards

    names = [u.full_name for u in load_wards().units]
    assert len(names) == len(set(names)) and all(0 < len(n) <= 100 for n in names)
    assert not (STATIC_DIR / "wards.json").exists()
    text = (STATIC_DIR / "messages.js").read_text(encoding="utf-8")
    for hint in re.findall(r'wardHint: "([^"]+)"', text):
        examples = re.findall(r"(Phường [^.,]+?|Xã [^.,]+?)(?: or | hoặc |\.)", hint)
        assert examples and all(e in names for e in examples), (hint, examples)


def test_the_page_length_figures_come_from_a_simulation_of_the_shipped_test():
    """The time, length and progress the page shows were simulated on the shipped bank
    and the default citizen test (regenerate with ``python -m nangluc.simulations.page_length``)."""
    from nangluc.engine import CITIZEN_TEST
    from nangluc.items import load_bank

    data = json.loads((STATIC_DIR / "test-length.json").read_text(encoding="utf-8"))
    assert data["bank_version"] == load_bank().version
    assert data["config"] == CITIZEN_TEST.name
    assert data["generated_by"] == "python -m nangluc.simulations.page_length"
    questions, minutes = data["questions"], data["minutes"]
    assert CITIZEN_TEST.min_items <= questions["median"] <= questions["p90"] <= questions["max"]
    assert questions["max"] == CITIZEN_TEST.max_items
    assert 0 < minutes["median"] <= minutes["p90"]
    table = data["progress"]["by_answered"]
    assert len(table) == CITIZEN_TEST.max_items
    assert all(0 <= x <= 0.95 for row in table for x in row)
    assert table[0] == [0.0] * len(table[0])
    # A citizen three quarters of the way through sees about three quarters.
    assert abs(data["progress_check"]["0.75"]["mean_shown"] - 0.75) < 0.1
    assert abs(data["progress_check"]["0.5"]["mean_shown"] - 0.5) < 0.1


def test_page_length_figures_are_reproducible():
    from nangluc.items import load_bank
    from nangluc.simulations.page_length import length_figures

    data = json.loads((STATIC_DIR / "test-length.json").read_text(encoding="utf-8"))
    again = length_figures(load_bank(), examinees=data["examinees"], seed=data["seed"])
    assert again == json.loads(json.dumps(again)) and again["questions"] == data["questions"]
    assert again["progress"] == data["progress"]


def test_vietnamese_and_english_messages_have_the_same_keys():
    text = (STATIC_DIR / "messages.js").read_text(encoding="utf-8")
    vi_block = text[text.index("  vi: {") : text.index("  en: {")]
    en_block = text[text.index("  en: {") : text.index("export const LANGUAGES")]
    key = re.compile(r"^    (\w+):", re.MULTILINE)
    assert key.findall(vi_block) == key.findall(en_block)
    assert len(key.findall(vi_block)) > 40


def test_static_folder_holds_only_page_assets():
    # Everything here is public; a stray data file must not be published.
    allowed = {".html", ".js", ".css", ".json", ".svg", ".png", ".ico"}
    assert {p.suffix for p in ASSETS} <= allowed
    assert (STATIC_DIR / "index.html").exists()
    assert Path(STATIC_DIR).is_dir()


def test_the_service_app_serves_the_pages_beside_the_api(tmp_path):
    from nangluc.service.app import create_app
    from nangluc.service.settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'pages.db'}"))
    with TestClient(app=app) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert '<div id="app">' in page.text
        assert client.get("/ket-qua?lang=en").text.count('<html lang="en">') == 1
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/static/missing.js").status_code == 404
        assert client.get("/api/v1/health").status_code == 200
        schema_paths = set(app.openapi_schema.paths or {})
        assert schema_paths and all(path.startswith("/api/v1") for path in schema_paths)
