"""The HTTP/1.1 protocol ``nangluc serve`` runs: uvicorn's httptools protocol with limits.

uvicorn reads a request's line and headers without a size limit and without a
deadline: an 8 MB or 200 MB header was read into memory and answered, and a
client dripping its headers or body (or declaring a body it never sends)
kept its connection for as long as it liked. This protocol adds, per
connection:

- a limit on the request line plus headers (``Settings.max_header_size``):
  larger get ``431 Request Header Fields Too Large`` and the connection is
  closed; at most one read (256 KiB) is buffered beyond the limit;
- a deadline for the line and headers (``Settings.header_timeout``), counted
  from the connection (first request) or from the first byte of a request
  (next ones);
- a deadline for the body (``Settings.body_timeout``), counted from the end of
  the headers.

A missed deadline gets ``408 Request Timeout`` (nothing if the client never
sent a byte) and the connection is closed; the application sees the client
as gone. uvicorn picks the protocol class by import path
(``nangluc serve`` passes ``http="nangluc.service.protocol:GuardedHttpToolsProtocol"``),
and every worker reads the limits from its environment (``Settings.from_env``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from nangluc.service.settings import Settings

PROTOCOL_PATH = "nangluc.service.protocol:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class ConnectionLimits:
    """Limits on how a client sends a request (see module docstring)."""

    max_header_size: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_header_size, settings.header_timeout, settings.body_timeout)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop reading an oversized head."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header size limits and read deadlines."""

    #: The limits of this process, read once from the environment.
    limits: ClassVar[ConnectionLimits | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = ConnectionLimits.of(Settings.from_env())
        self._limits = cls.limits
        self._deadline: asyncio.TimerHandle | None = None
        self._head_done = True  # no request begun yet
        self._head_bytes = 0  # bytes read while the head was incomplete
        self._head_size = 0  # request target plus header fields parsed so far
        self._head_too_large = False
        self._received = False  # any byte of the current request

    # Deadlines ---------------------------------------------------------------
    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if what == "body" and cycle is not None:
            replied = cycle.response_started or cycle.response_complete
            cycle.disconnected = True  # the application reads http.disconnect
            cycle.message_event.set()
            if replied:  # it answered without waiting for the body
                self.transport.close()
                return
        if not self._received:
            self.transport.close()  # connected and never sent a byte
            return
        self._reply_and_close(408, f"the request {what} was not received within the time allowed")

    def _reply_and_close(self, status: int, message: str) -> None:
        body = message.encode("utf-8")
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"x-content-type-options: nosniff\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()

    # Protocol interface ------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self._limits.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received = True
        super().data_received(data)
        if self.transport.is_closing() or self._head_done:
            return
        self._head_bytes += len(data)
        if self._head_bytes > self._limits.max_header_size:
            self._too_large()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._too_large()
        else:
            super().send_400_response(msg)

    def _too_large(self) -> None:
        self._disarm()
        self._reply_and_close(
            431, f"the request line and headers exceed {self._limits.max_header_size} bytes"
        )

    # Parser callbacks --------------------------------------------------------
    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._limits.max_header_size:
            self._head_too_large = True
            raise _HeadTooLarge

    def on_message_begin(self) -> None:
        self._head_done = False
        self._head_bytes = 0
        self._head_size = 0
        self._received = True
        if self._deadline is None:
            self._arm(self._limits.header_timeout, "headers")
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._disarm()
        super().on_headers_complete()
        if self._expects_body():
            self._arm(self._limits.body_timeout, "body")

    def on_message_complete(self) -> None:
        self._disarm()
        self._received = False
        super().on_message_complete()

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False
