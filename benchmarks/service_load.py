"""Service load: answers per second and latency at 64 concurrent clients (DESIGN §5).

Starts ``nangluc serve`` (uvicorn, ``--workers`` processes) against a
fresh PostgreSQL schema, then

1. hits the plain ``/api/v1/health`` endpoint from the same number of clients
   (no database: the framework's ceiling on this machine);
2. *saturated*: every client runs whole tests (start a session, answer a
   random option until the test finishes, start the next) and sends each
   request as soon as it has the previous reply. This gives the throughput
   ceiling; its latency is queueing by Little's law (64 clients / answers
   per second), so no server reaches p99 <= 50 ms this way below 1,280/s;
3. *paced*: the same clients, each pacing its requests so that together they
   offer ``--rate`` answers/s (people pause to read a question). Latency is
   counted from when a request was due, so falling behind is charged.
   Clients arrive spread over one mean test duration at that pace (the
   ramp, about 2 s at 500/s: 64 clients x 0.128 s x ~15 answers), as a
   steady stream of citizens does, and ``--seconds`` of steady load are
   counted after it; the answers due during the ramp are reported apart
   (``opening_answers``, ``opening_p99_ms``). Arriving all within one
   pacing interval made 64 test starts in 0.13 s, about 15 times the steady
   start rate, and tests that then ended and restarted in waves;
   ``--ramp 0`` measures that way (everything counted).

The load generator runs on the same machine as the server and the database.
The figure is the last line printed, e.g.::

    service answers 812/s p50 78 ms p99 120 ms; paced to 500/s: 500/s p50 9 ms p99 31 ms, starts p99 40 ms (health 8000/s, ratio 0.10)

Run: ``python -m benchmarks.service_load [--clients 64] [--seconds 20]
[--rate 500] [--ramp SECONDS] [--workers 2]
[--database-url postgresql://postgres@127.0.0.1:5432/test]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES = os.environ.get(
    "NANGLUC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Phase:
    """One load phase: answers per second and the latency of an answer."""

    answers: int
    tests_finished: int
    errors: int
    seconds: float
    answers_per_second: float
    p50_ms: float
    p99_ms: float
    #: Latency of starting a test (``POST /sessions``, sent at once, not paced).
    start_p99_ms: float = float("nan")
    #: Answers before the counted window (the arrival ramp), and their p99.
    opening_answers: int = 0
    opening_p99_ms: float = float("nan")

    @classmethod
    def of(cls, load: Load) -> Phase:
        lat = np.asarray(load.latencies) * 1000
        return cls(
            answers=int(lat.size),
            tests_finished=load.finished,
            errors=load.errors,
            seconds=round(load.elapsed, 2),
            answers_per_second=lat.size / load.elapsed,
            p50_ms=_percentile(lat, 50),
            p99_ms=_percentile(lat, 99),
            start_p99_ms=_percentile(np.asarray(load.start_latencies) * 1000, 99),
            opening_answers=len(load.opening),
            opening_p99_ms=_percentile(np.asarray(load.opening) * 1000, 99),
        )


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else float("nan")


@dataclass
class Load:
    """What one load phase saw: answer latencies in the counted window and around it."""

    latencies: list[float]  # answers due in the counted window (seconds)
    start_latencies: list[float]  # test starts sent in the counted window
    opening: list[float]  # answers due during the arrival ramp (not in ``latencies``)
    finished: int  # tests finished in the counted window
    errors: int
    elapsed: float  # seconds from the window's start until the last reply


@dataclass(frozen=True)
class LoadResult:
    clients: int
    workers: int
    saturated: Phase  # every client sends as soon as it has a reply
    paced: Phase | None  # clients pace themselves to a target total rate
    target_rate: float | None
    #: Seconds over which the paced clients arrived (not counted in ``paced``).
    ramp_seconds: float | None
    health_per_second: float
    health_p99_ms: float
    #: CPU milliseconds per answer in the saturated phase: server processes
    #: (``event_loop``: their main threads, the rest is the session threads),
    #: PostgreSQL processes, this load generator; and the machine's load.
    cpu_ms_per_answer: dict[str, float] | None = None

    @property
    def ratio(self) -> float:
        """Answers per second at saturation over plain health requests per second."""
        return (
            self.saturated.answers_per_second / self.health_per_second
            if self.health_per_second
            else float("nan")
        )

    def line(self) -> str:
        s = self.saturated
        text = f"service answers {s.answers_per_second:.0f}/s p50 {s.p50_ms:.0f} ms p99 {s.p99_ms:.0f} ms"
        if self.paced is not None:
            p = self.paced
            text += (
                f"; paced to {self.target_rate:.0f}/s: {p.answers_per_second:.0f}/s "
                f"p50 {p.p50_ms:.0f} ms p99 {p.p99_ms:.0f} ms, starts p99 {p.start_p99_ms:.0f} ms"
            )
        text += f" (health {self.health_per_second:.0f}/s, ratio {self.ratio:.2f})"
        if self.cpu_ms_per_answer:
            cpu = self.cpu_ms_per_answer
            text += (
                f" [CPU ms/answer: server {cpu['server']:.2f} (event loops {cpu['event_loop']:.2f}), "
                f"postgres {cpu['postgres']:.2f}, "
                f"client {cpu['client']:.2f}; load average {cpu['load_average_1min']:.1f}]"
            )
        return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Schema:
    """A PostgreSQL schema of its own, so the run starts empty and leaves nothing behind."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.base = url
        self.name = f"nangluc_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    @property
    def url(self) -> str:
        separator = "&" if "?" in self.base else "?"
        return f"{self.base}{separator}options={quote(f'-csearch_path={self.name}')}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def _start_server(
    database_url: str,
    port: int,
    workers: int,
    bank: str | None,
    env: dict[str, str] | None = None,
    log_level: str = "warning",
) -> subprocess.Popen:
    """``nangluc serve`` in a process group of its own; returns once it answers /health."""
    command = [sys.executable, "-m", "nangluc", "serve", "--port", str(port)]
    command += ["--database-url", database_url, "--workers", str(workers)]
    command += ["--no-access-log", "--log-level", log_level]
    if bank:
        command += ["--bank", bank]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    _stop_server(process)
    raise RuntimeError("the server did not answer within 60 s")


def _stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Http:
    """One keep-alive HTTP/1.1 connection speaking just what the benchmark needs.

    httpx's async client costs about 1 ms of CPU per request and its pool
    slows down sharply at 64 connections (on this 2-core machine: 60 health
    requests/s through one shared client, 280/s with one client per task,
    against 9,500/s over plain sockets), so it would measure itself rather
    than the server. This client sends a request, reads the status line and
    headers, then ``Content-Length`` bytes of body.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> _Http:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("ascii") + b"\r\n" + (body or b""))
        header = await self.reader.readuntil(b"\r\n\r\n")
        lines = header.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"{method} {path}: reply without Content-Length")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _health_load(host: str, port: int, clients: int, seconds: float) -> tuple[float, float]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        http = await _Http(host, port).open()
        try:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                status, _ = await http.request("GET", "/api/v1/health")
                if status == 200:
                    latencies.append(time.perf_counter() - t)
        finally:
            http.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return len(latencies) / elapsed, float(
        np.percentile(latencies, 99) * 1000
    ) if latencies else float("nan")


async def _answer_load(
    host: str,
    port: int,
    clients: int,
    seconds: float,
    seed: int,
    rate: float | None = None,
    ramp: float = 0.0,
) -> Load:
    """Clients running whole tests for ``ramp`` + ``seconds``; counts the last ``seconds``.

    ``rate`` None: every client sends its next request as soon as it has the
    reply (saturation: the server's ceiling, latency = clients / throughput by
    Little's law). ``rate`` R: each client paces its answers at R / clients
    per second (like people pausing to read), and latency is counted from
    when an answer was due, so a server that falls behind is charged for it.
    Starting the next test is sent at once and takes no answer's slot, so the
    clients together offer R answers/s (plus the starts).

    Clients arrive at uniform random moments of the first ``ramp`` seconds
    (within the first pacing interval when ``ramp`` is 0); what is due before
    the ramp ends is kept apart (:attr:`Load.opening`).
    """
    latencies: list[float] = []
    start_latencies: list[float] = []
    opening: list[float] = []
    finished = 0
    errors = 0
    interval = clients / rate if rate else 0.0
    begin = time.perf_counter()
    counted_from = begin + ramp
    stop = counted_from + seconds

    async def worker(rng: np.random.Generator) -> None:
        nonlocal finished, errors
        http = await _Http(host, port).open()
        due = begin + rng.uniform(0, ramp or interval)

        async def send(
            method: str, path: str, body: bytes, paced: bool = True
        ) -> tuple[int, bytes, float, bool]:
            """Status, body, latency, and whether the request falls in the counted window."""
            nonlocal due
            if not (paced and interval):
                start = time.perf_counter()
                status, raw = await http.request(method, path, body)
                return status, raw, time.perf_counter() - start, start >= counted_from
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            start = due
            status, raw = await http.request(method, path, body)
            done = time.perf_counter()
            due = max(due + interval, done)
            return status, raw, done - start, start >= counted_from

        try:
            # Arrive at a random moment, as people do (at once, the 64 first
            # starts were a burst no steady load has).
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            while time.perf_counter() < stop:
                start_body = msgspec.json.encode({"ward": f"ward-{rng.integers(20)}"})
                status, raw, latency, counted = await send(
                    "POST", "/api/v1/sessions", start_body, paced=False
                )
                if status != 201:
                    errors += 1
                    continue
                if counted:
                    start_latencies.append(latency)
                body = msgspec.json.decode(raw)
                path, item = f"/api/v1/sessions/{body['session_id']}/answers", body["item"]
                while item is not None and time.perf_counter() < stop:
                    answer = {
                        "item_id": item["id"],
                        "response": int(rng.integers(len(item["options"]))),
                    }
                    status, raw, latency, counted = await send(
                        "POST", path, msgspec.json.encode(answer)
                    )
                    if status != 200:
                        errors += 1
                        break
                    (latencies if counted else opening).append(latency)
                    item = msgspec.json.decode(raw)["item"]
                if item is None and time.perf_counter() >= counted_from:
                    finished += 1
        finally:
            http.close()

    rngs = [np.random.default_rng([seed, k]) for k in range(clients)]
    await asyncio.gather(*(worker(rng) for rng in rngs))
    elapsed = time.perf_counter() - counted_from
    return Load(latencies, start_latencies, opening, finished, errors, elapsed)


def ramp_for(rate: float, clients: int, answers_per_test: float) -> float:
    """Seconds for ``clients`` to arrive spread like a steady stream: one mean test duration.

    A client paced at ``rate / clients`` answers/s takes ``answers_per_test``
    pacing intervals for a test; arrivals spread over that time start tests
    at the steady rate from the first second.
    """
    return clients / rate * answers_per_test


def _run(coroutine):
    """Run on uvloop when it is installed (uvicorn uses it too): the client's own cost stays small."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run(
    *,
    database_url: str = DEFAULT_POSTGRES,
    clients: int = 64,
    seconds: float = 20.0,
    health_seconds: float = 5.0,
    workers: int = 2,
    bank: str | None = None,
    seed: int = 0,
    rate: float | None = 500.0,
    ramp: float | None = None,
) -> LoadResult:
    """Start a server on a fresh schema, measure, stop it and drop the schema.

    ``ramp`` None: the paced clients arrive over one mean test duration at
    the pace (:func:`ramp_for`, with the saturated phase's answers per test).
    """
    schema = _Schema(database_url)
    host, port = "127.0.0.1", _free_port()
    try:
        server = _start_server(schema.url, port, workers, bank)
        try:
            # Warm-up: connection pools, bank caches, prepared statements in every worker.
            _run(_answer_load(host, port, clients, 2.0, seed + 1))
            health, health_p99 = _run(_health_load(host, port, clients, health_seconds))
            before = _cpu_seconds(server.pid)
            saturated = Phase.of(_run(_answer_load(host, port, clients, seconds, seed)))
            after = _cpu_seconds(server.pid)
            paced = None
            if rate:
                if ramp is None:
                    per_test = saturated.answers / max(saturated.tests_finished, 1)
                    ramp = ramp_for(rate, clients, per_test)
                paced = Phase.of(
                    _run(_answer_load(host, port, clients, seconds, seed + 2, rate, ramp))
                )
        finally:
            _stop_server(server)
    finally:
        schema.drop()
    return LoadResult(
        clients=clients,
        workers=workers,
        saturated=saturated,
        paced=paced,
        target_rate=rate,
        ramp_seconds=round(ramp, 2) if paced is not None else None,
        health_per_second=health,
        health_p99_ms=health_p99,
        cpu_ms_per_answer=_per_answer(before, after, saturated.answers),
    )


def _cpu_seconds(server_pid: int) -> dict[str, float] | None:
    """CPU seconds used so far by the server, PostgreSQL and this process (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None

    def total(processes) -> float:
        seconds = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
                seconds += times.user + times.system
            except psutil.Error:
                pass
        return seconds

    def main_threads(processes) -> float:
        """CPU of each process's main thread: a worker's event loop (HTTP, routing, replies)."""
        seconds = 0.0
        for process in processes:
            try:
                for thread in process.threads():
                    if thread.id == process.pid:
                        seconds += thread.user_time + thread.system_time
            except psutil.Error:
                pass
        return seconds

    server = psutil.Process(server_pid)
    postgres = [
        p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")
    ]
    server_processes = [server, *server.children(recursive=True)]
    return {
        "server": total(server_processes),
        "event_loop": main_threads(server_processes),
        "postgres": total(postgres),
        "client": total([psutil.Process()]),
        "load_average_1min": os.getloadavg()[0],
    }


def _per_answer(
    before: dict[str, float] | None, after: dict[str, float] | None, answers: int
) -> dict[str, float] | None:
    if before is None or after is None or not answers:
        return None
    out = {
        k: round((after[k] - before[k]) / answers * 1000, 3)
        for k in ("server", "event_loop", "postgres", "client")
    }
    out["load_average_1min"] = round(after["load_average_1min"], 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL server (a fresh schema is used)",
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the answer phase")
    parser.add_argument("--health-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--bank", default=None, help="bank file (default: the shipped bank)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rate",
        type=float,
        default=500.0,
        help="total answers/s of the paced phase (0: skip it)",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which the paced clients arrive, not counted "
        "(default: one mean test duration at the pace; 0: within one pacing interval)",
    )
    parser.add_argument(
        "--json", dest="json_out", default=None, help="also write the figures to this JSON file"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--clients and --workers must be >= 1 and --seconds > 0")
    if args.ramp is not None and args.ramp < 0:
        parser.error("--ramp must be >= 0")
    result = run(
        database_url=args.database_url,
        clients=args.clients,
        seconds=args.seconds,
        health_seconds=args.health_seconds,
        workers=args.workers,
        bank=args.bank,
        seed=args.seed,
        rate=args.rate or None,
        ramp=args.ramp,
    )
    summary = asdict(result) | {"ratio": result.ratio}
    print(json.dumps(summary, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(result.line())


if __name__ == "__main__":
    main()
