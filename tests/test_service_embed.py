"""Embedding in other apps: CORS for the allow-listed origins, the framable page, Location.

Issue #14, section 4. The allow-list is ``Settings.embed_origins``
(``NANGLUC_EMBED_ORIGINS``); every check runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nangluc.service.pages import CONTENT_SECURITY_POLICY
from nangluc.service.settings import Settings, normalize_origin
from service_fixtures import ADMIN_KEY, DATABASES, PLANNER_KEY, app_client, fresh_database

PORTAL = "https://portal.example.vn"
OTHER_PORTAL = "http://127.0.0.1:8765"
STRANGER = "https://stranger.example"


@pytest.fixture(scope="module", params=DATABASES)
def embed_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("embed")
    with (
        fresh_database(request.param, directory) as url,
        app_client(url, directory, embed_origins=(PORTAL, OTHER_PORTAL)) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def closed_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An app with no embedding origins (the default)."""
    directory = tmp_path_factory.mktemp("closed")
    with app_client(f"sqlite:///{directory / 'closed.db'}", directory) as client:
        yield client


def _preflight(client: Any, path: str, origin: str, method: str = "POST") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


# ------------------------------------------------------------------ settings --


def test_embed_origins_are_normalised_and_travel_to_workers() -> None:
    settings = Settings(embed_origins=("HTTPS://Portal.Example.vn:443", "http://127.0.0.1:8765"))
    assert settings.embed_origins == (PORTAL, OTHER_PORTAL)
    assert Settings.from_env(settings.to_env()).embed_origins == settings.embed_origins
    env = {"NANGLUC_EMBED_ORIGINS": f" {PORTAL} , {OTHER_PORTAL},"}
    assert Settings.from_env(env).embed_origins == (PORTAL, OTHER_PORTAL)
    assert Settings().embed_origins == ()


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "null",
        f"{PORTAL}/",
        f"{PORTAL}/app",
        f"{PORTAL}?x=1",
        "portal.example.vn",
        "ftp://portal.example.vn",
        "https://user@portal.example.vn",
        "https://*.example.vn",
        "https://portal.example.vn:99999",
    ],
)
def test_an_allow_list_names_origins_never_a_wildcard_or_a_path(value: str) -> None:
    with pytest.raises(ValueError, match="origin|port"):
        normalize_origin(value)
    with pytest.raises(ValueError, match="NANGLUC_EMBED_ORIGINS"):
        Settings.from_env({"NANGLUC_EMBED_ORIGINS": f"{PORTAL},{value}"})


# ---------------------------------------------------------------------- CORS --


@pytest.mark.parametrize("origin", [PORTAL, OTHER_PORTAL])
@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/sessions", "POST"),
        ("/api/v1/sessions/00000000-0000-4000-8000-000000000001/answers", "POST"),
        ("/api/v1/sessions/00000000-0000-4000-8000-000000000001/result", "GET"),
        ("/api/v1/score", "POST"),
        ("/api/v1/framework", "GET"),
    ],
)
def test_preflight_from_an_allowed_origin_is_answered(
    embed_client: Any, origin: str, path: str, method: str
) -> None:
    reply = _preflight(embed_client, path, origin, method)
    assert reply.status_code == 204, reply.text
    assert reply.headers["access-control-allow-origin"] == origin
    assert method in reply.headers["access-control-allow-methods"].split(", ")
    assert "content-type" in reply.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in reply.headers
    assert reply.headers["vary"] == "Origin"


def test_preflight_from_another_origin_is_refused(embed_client: Any) -> None:
    reply = _preflight(embed_client, "/api/v1/sessions", STRANGER)
    assert reply.status_code == 400
    assert "access-control-allow-origin" not in reply.headers
    # A look-alike of an allowed origin is another origin.
    for origin in (PORTAL + ".evil.example", "http://portal.example.vn", PORTAL + ":8443"):
        look_alike = _preflight(embed_client, "/api/v1/sessions", origin)
        assert "access-control-allow-origin" not in look_alike.headers, origin


def test_replies_name_the_allowed_origin_and_expose_location(embed_client: Any) -> None:
    reply = embed_client.post("/api/v1/sessions", json={}, headers={"Origin": PORTAL})
    assert reply.status_code == 201
    assert reply.headers["access-control-allow-origin"] == PORTAL
    exposed = [h.strip().lower() for h in reply.headers["access-control-expose-headers"].split(",")]
    assert "location" in exposed
    assert "access-control-allow-credentials" not in reply.headers
    stranger = embed_client.get("/api/v1/framework", headers={"Origin": STRANGER})
    assert stranger.status_code == 200  # a server-side client still reads the public API
    assert "access-control-allow-origin" not in stranger.headers


def test_error_replies_are_readable_by_the_allowed_origin(embed_client: Any) -> None:
    """A portal's code can read why a call failed (422 naming the field, 404, 413)."""
    origin = {"Origin": PORTAL}
    bad = embed_client.post("/api/v1/score", json={"responses": []}, headers=origin)
    missing = embed_client.get(
        "/api/v1/sessions/00000000-0000-4000-8000-000000000001", headers=origin
    )
    large = embed_client.post(
        "/api/v1/score", json={"responses": [{"item": "x" * 70_000, "response": 0}]}, headers=origin
    )
    for reply, status in ((bad, 422), (missing, 404), (large, 413)):
        assert reply.status_code == status
        assert reply.headers["access-control-allow-origin"] == PORTAL
        assert reply.json()["detail"]


@pytest.mark.parametrize(
    ("path", "key"),
    [("/api/v1/admin/banks", ADMIN_KEY), ("/api/v1/reports/releases", PLANNER_KEY)],
)
def test_keyed_endpoints_get_no_cors_even_for_allowed_origins(
    embed_client: Any, path: str, key: str
) -> None:
    reply = embed_client.get(path, headers={"Origin": PORTAL, "X-API-Key": key})
    assert reply.status_code == 200
    assert not [h for h in reply.headers if h.startswith("access-control-")]
    preflight = _preflight(embed_client, path, PORTAL, "GET")
    assert preflight.status_code != 204
    assert "access-control-allow-origin" not in preflight.headers


def test_pages_get_no_cors(embed_client: Any) -> None:
    reply = embed_client.get("/", headers={"Origin": PORTAL})
    assert not [h for h in reply.headers if h.startswith("access-control-")]


def test_without_origins_there_is_no_cors(closed_client: Any) -> None:
    reply = closed_client.get("/api/v1/framework", headers={"Origin": PORTAL})
    assert "access-control-allow-origin" not in reply.headers
    preflight = _preflight(closed_client, "/api/v1/sessions", PORTAL)
    assert "access-control-allow-origin" not in preflight.headers


# ------------------------------------------------------------ framable page --


def _frame_ancestors(reply: Any) -> str:
    policy = reply.headers["content-security-policy"]
    found = re.search(r"frame-ancestors ([^;]+)", policy)
    assert found is not None, policy
    return found.group(1).strip()


@pytest.mark.parametrize("path", ["/", "/ket-qua"])
def test_the_embed_page_may_be_framed_by_the_allowed_origins_only(
    embed_client: Any, path: str
) -> None:
    reply = embed_client.get(f"{path}?embed=1")
    assert reply.status_code == 200
    assert _frame_ancestors(reply) == f"{PORTAL} {OTHER_PORTAL}"
    # The rest of the policy is the ordinary page's.
    rest = reply.headers["content-security-policy"].split("frame-ancestors")[0]
    assert rest == CONTENT_SECURITY_POLICY.split("frame-ancestors")[0]
    meta = re.search(r'<meta name="nangluc-embed" content="([^"]*)">', reply.text)
    assert meta is not None and meta.group(1).split() == [PORTAL, OTHER_PORTAL]


@pytest.mark.parametrize("path", ["/", "/ket-qua", "/?embed=0", "/?embed=", "/planner"])
def test_every_other_page_may_be_framed_by_no_one(embed_client: Any, path: str) -> None:
    reply = embed_client.get(path)
    assert reply.status_code == 200
    assert _frame_ancestors(reply) == "'none'"
    assert "nangluc-embed" not in reply.text


def test_the_docs_may_be_framed_by_no_one(embed_client: Any) -> None:
    reply = embed_client.get("/schema/swagger")
    assert reply.status_code == 200
    assert _frame_ancestors(reply) == "'none'"


def test_with_no_origins_the_embed_page_may_be_framed_by_no_one(closed_client: Any) -> None:
    reply = closed_client.get("/?embed=1")
    assert reply.status_code == 200
    assert _frame_ancestors(reply) == "'none'"
    # Marked as embedded, with no origin to post to.
    assert '<meta name="nangluc-embed" content="">' in reply.text


# ---------------------------------------------------------------- Location --


def test_a_new_session_says_where_it_lives(embed_client: Any) -> None:
    reply = embed_client.post("/api/v1/sessions", json={})
    assert reply.status_code == 201
    session_id = reply.json()["session_id"]
    assert reply.headers["location"] == f"/api/v1/sessions/{session_id}"
    followed = embed_client.get(reply.headers["location"])
    assert followed.status_code == 200 and followed.json()["session_id"] == session_id


def test_a_stored_bank_file_says_where_it_lives(embed_client: Any, tmp_path: Path) -> None:
    from service_fixtures import bank_dict

    version = f"embed-{uuid.uuid4().hex[:6]}"
    reply = embed_client.post(
        "/api/v1/admin/bank-files",
        json=bank_dict(version, per_area=4),
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"/api/v1/admin/banks/{version}"
    followed = embed_client.get(reply.headers["location"], headers={"X-API-Key": ADMIN_KEY})
    assert followed.status_code == 200 and followed.json()["version"] == version


def test_a_new_cohort_says_where_it_lives(embed_client: Any) -> None:
    headers = {"X-API-Key": PLANNER_KEY}
    reply = embed_client.post(
        "/api/v1/reports/cohorts/new", json={"name": "Lớp A"}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    code = reply.json()["code"]
    assert reply.headers["location"] == f"/api/v1/reports/cohorts/{code}"
    followed = embed_client.get(reply.headers["location"], headers=headers)
    assert followed.status_code == 200 and followed.json() == reply.json()
    assert embed_client.get("/api/v1/reports/cohorts/ZZZZ9", headers=headers).status_code == 404
    assert embed_client.get(reply.headers["location"]).status_code == 401


def test_every_201_reply_documents_its_location(embed_client: Any) -> None:
    document = embed_client.get("/schema/openapi.json").json()
    created = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            reply = (
                operation.get("responses", {}).get("201") if isinstance(operation, dict) else None
            )
            if reply is not None:
                created[(method, path)] = "Location" in reply.get("headers", {})
    assert ("post", "/api/v1/sessions") in created
    # A ward alias has no resource of its own to point to.
    without = {k for k, has in created.items() if not has}
    assert without == {("post", "/api/v1/admin/wards/aliases")}, without


def test_a_stored_test_definition_says_where_it_lives(embed_client: Any) -> None:
    document = {
        "name": "dinh-vi",
        "version": "1",
        "title": {"vi": "Phiếu thử"},
        "intended_use": {"vi": "Kiểm tra Location."},
        "languages": ["vi"],
        "form": {"items": ["4.t00", "5.t01"]},
    }
    headers = {"X-API-Key": ADMIN_KEY}
    reply = embed_client.post("/api/v1/admin/test-definitions", json=document, headers=headers)
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == "/api/v1/admin/tests/dinh-vi/1"
    followed = embed_client.get(reply.headers["location"], headers=headers)
    assert followed.status_code == 200 and followed.json()["name"] == "dinh-vi"
