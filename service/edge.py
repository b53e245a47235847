"""What the application checks and adds at its edge: request bodies in, headers out.

- :class:`StrictRequest` (Litestar's ``request_class``) reads a JSON body only
  when it is sent as JSON (else 415), is nested no deeper than
  :data:`MAX_JSON_DEPTH` (else 400; deeper input made the decoder recurse
  until a ``RecursionError``, a 500) and matches the handler's body type
  strictly: ``"response": 1.0`` or ``"1"`` is refused (400) where the schema
  says integer, instead of being converted.
- :func:`add_security_headers` (a ``before_send`` hook, so it sees every
  reply, errors and unknown routes included) adds
  ``X-Content-Type-Options: nosniff`` everywhere, ``Cache-Control: no-store``
  on the API (sessions, results, exports, reports: nothing a shared cache or
  a phone's back button should keep), and the documentation pages' policy.

- :func:`public_cors` answers cross-origin calls to the public API from the
  embedding origins (``Settings.embed_origins``) and from no one else.
- :func:`head_as_get` answers ``HEAD`` wherever ``GET`` is answered (uptime
  monitors and ``curl -I`` ask with it; it was 405 everywhere).

Request-line and header size limits and read timeouts live one level lower,
in the HTTP server (:mod:`nangluc.service.protocol`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.exceptions import ClientException, HTTPException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.empty import value_or_default

#: Deepest accepted nesting of arrays and objects in a JSON body (ours are 1 deep).
MAX_JSON_DEPTH = 32

API_PREFIX = "/api/v1"
DOCS_PREFIX = "/schema"

#: Documentation pages (Swagger UI, served from the package): their own
#: scripts and styles only; Swagger UI sets inline style attributes.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class UnsupportedMediaType(HTTPException):
    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


def json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of the arrays and objects in a JSON text, counted up to ``limit + 1``.

    Brackets inside strings do not count. A text with no more than ``limit``
    brackets in all is answered without a scan (every body we take).
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return min(limit, body.count(b"[") + body.count(b"{"))
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


@cache
def _strict_type(annotation: Any) -> Any:
    """A decoder that checks a body against ``annotation`` without type coercion."""
    return msgspec.json.Decoder(annotation, strict=True)


class StrictRequest(Request):
    """A request whose JSON body is checked before the handler sees it (see module docstring)."""

    async def json(self) -> Any:
        if value_or_default(self._connection_state.json, None) is None:
            body = await self.body()
            if body:
                self._check_json_body(body)
        return await super().json()

    def _check_json_body(self, body: bytes) -> None:
        content_type, _ = self.content_type
        if not _is_json(content_type.lower()):
            raise UnsupportedMediaType(
                detail=(
                    f"the body must be JSON sent with Content-Type: application/json "
                    f"(got {content_type or 'no Content-Type'!r})"
                )
            )
        if json_depth(body) > MAX_JSON_DEPTH:
            raise ClientException(
                detail=f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
            )
        field = self.route_handler.parsed_data_field
        annotation = field.annotation if field is not None else Any
        try:
            _strict_type(annotation).decode(body)
        except msgspec.ValidationError as error:
            raise ClientException(detail=f"invalid request body: {error}") from None
        except msgspec.DecodeError as error:
            raise ClientException(detail=f"the body is not valid JSON: {error}") from None


_NOSNIFF = ("x-content-type-options", "nosniff")


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: the headers every reply carries (see module docstring)."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers[_NOSNIFF[0]] = _NOSNIFF[1]
    path: str = scope.get("path", "")
    if path.startswith("/api/"):
        headers["cache-control"] = "no-store"
    elif path == DOCS_PREFIX or path.startswith(DOCS_PREFIX + "/"):
        headers.setdefault("content-security-policy", DOCS_CONTENT_SECURITY_POLICY)
        headers.setdefault("referrer-policy", "no-referrer")


#: API paths that browser code on an embedding origin may call: everything but
#: the keyed researcher and planner endpoints, which are for the operators' own
#: tools (their keys must never sit in a portal's page).
PRIVATE_API_PREFIXES = (f"{API_PREFIX}/admin", f"{API_PREFIX}/reports")
#: Headers a browser may send cross-origin (beyond the CORS-safelisted ones).
CORS_REQUEST_HEADERS = ["Content-Type", "Accept", "Accept-Language"]
#: Reply headers browser code on an embedding origin may read.
CORS_EXPOSED_HEADERS = ["Location", "Retry-After"]


def is_public_api(path: str) -> bool:
    """Whether ``path`` is part of the public API (CORS applies) — not admin, not reports."""
    if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
        return False
    return not any(path == p or path.startswith(p + "/") for p in PRIVATE_API_PREFIXES)


def cors_config(origins: tuple[str, ...]) -> CORSConfig:
    """Litestar's CORS for exactly ``origins``: no wildcard, no credentials (no cookies are used)."""
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=list(CORS_REQUEST_HEADERS),
        allow_credentials=False,
        expose_headers=list(CORS_EXPOSED_HEADERS),
        max_age=600,
    )


def public_cors(app: ASGIApp, origins: tuple[str, ...]) -> ASGIApp:
    """Wrap ``app`` so the public API answers CORS (preflight and replies) for ``origins``.

    Litestar's ``cors_config`` would cover every path (the keyed admin and
    planner endpoints and the pages too), and its middleware is not public
    API; this applies the same :class:`CORSConfig` (its origin check and
    headers) to the public API only. A preflight from an allowed origin gets
    ``204`` with the allowed methods and headers; from any other origin
    ``400`` without CORS headers, so the browser refuses the call. Other
    paths get no CORS headers at all. With no origins ``app`` is returned
    as it is.
    """
    if not origins:
        return app
    config = cors_config(origins)
    allowed_headers = {h.lower() for h in config.allow_headers}

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public_api(scope.get("path", "")):
            await app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        origin = headers.get("origin")
        if origin is None:
            await app(scope, receive, send)
            return
        allowed = config.is_origin_allowed(origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            method = headers["access-control-request-method"]
            asked = {
                h.strip().lower()
                for h in headers.get("access-control-request-headers", "").split(",")
                if h.strip()
            }
            if allowed and method in config.allow_methods and asked <= allowed_headers:
                reply = {**config.preflight_headers, "Access-Control-Allow-Origin": origin}
                await _reply(send, 204, reply, b"")
            else:
                await _reply(send, 400, {"Vary": "Origin"}, b"cross-origin request not allowed")
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                out = MutableScopeHeaders.from_message(message)
                out.update(config.simple_headers)
                out["Access-Control-Allow-Origin"] = origin
                out["Vary"] = "Origin"
            await send(message)

        await app(scope, receive, with_cors)

    return dispatch


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so ``HEAD`` gets what ``GET`` would, without the body (RFC 9110, 9.3.2).

    The status and headers (``Content-Length`` included) are the ``GET``
    reply's; a path without ``GET`` gets the same 404 or 405. The request
    log and metrics still say ``HEAD``, with the route that answered.
    """

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        try:
            await app(as_get, receive, headers_only)
        finally:
            if "path_template" in as_get:
                scope["path_template"] = as_get["path_template"]

    return dispatch


async def _reply(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
