"""Several worker processes on one port, each with its own listening socket.

uvicorn's ``--workers`` binds one socket in the parent and every worker
accepts from it. The worker that happens to be waiting when a client
connects takes the connection, so long-lived keep-alive connections (an
app's or a proxy's pool) end up unevenly spread: measured with 64 clients
and 2 workers (``python -m benchmarks.service_load``), splits of 64/0, 43/21
and 32/32 gave 295, 595 and 649 answers/s. A worker is one Python process
(one core at most, under its interpreter lock), so the busiest worker sets
the pace while the other core idles.

Here each worker binds the address itself with ``SO_REUSEPORT``: the Linux
kernel then hashes each new connection to one of the listening sockets, so
connections are spread evenly whichever worker is busy. The parent keeps a
bound, non-listening socket of the same group for as long as it runs, which
reserves the port (another program cannot take it between worker restarts)
and fixes the port number when 0 is asked for. uvicorn's supervisor still
starts, health-checks, restarts and stops the workers.

Where the platform has no ``SO_REUSEPORT`` the workers share one socket as
uvicorn does by default.
"""

from __future__ import annotations

import logging
import socket
import sys

# uvicorn's exit code for a worker that cannot start: its supervisor then stops
# instead of restarting the worker forever.
from uvicorn.config import STARTUP_FAILURE

# The parent's messages go where uvicorn's own supervisor messages go.
logger = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker_socket(host: str, port: int) -> socket.socket:
    """Called in a worker as it starts (see :class:`WorkerListener`)."""
    try:
        sock = bind_reuse_port(host, port)
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)
    sock.set_inheritable(True)
    return sock


class WorkerListener:
    """The address a worker listens on; each worker process binds its own socket.

    uvicorn's supervisor hands the same list of sockets to every worker it
    starts, by pickling it into the new process. This stands in that list
    for a socket: unpickled in a worker, it becomes a fresh socket of the
    ``SO_REUSEPORT`` group of ``host:port``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self):
        return (_worker_socket, (self.host, self.port))


def run_workers(config, host: str, port: int) -> None:
    """Run ``config.workers`` uvicorn workers on ``host:port`` (see module docstring).

    ``config`` is a ``uvicorn.Config`` whose app is an import string.
    Exits with a message if the address cannot be bound.
    """
    from uvicorn.supervisors import Multiprocess

    if not reuse_port_supported():
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    try:
        reserved = bind_reuse_port(host, port)
    except OSError as error:
        logger.error("cannot listen on %s:%d: %s", host, port, error)
        sys.exit(STARTUP_FAILURE)
    try:
        port = reserved.getsockname()[1]
        scheme_host = f"[{host}]" if ":" in host else host
        logger.info(
            "Uvicorn running on http://%s:%d, %d workers on their own sockets (Press CTRL+C to quit)",
            scheme_host,
            port,
            config.workers,
        )
        Multiprocess(config, sockets=[WorkerListener(host, port)]).run()
    finally:
        reserved.close()
