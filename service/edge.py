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

Request-line and header size limits and read timeouts live one level lower,
in the HTTP server (:mod:`nangluc.service.protocol`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ClientException, HTTPException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Message, Scope
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
