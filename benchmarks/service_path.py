"""CPU time of the service's session work per request, in-process (no HTTP), and the engine's share.

``benchmarks.service_load`` measures the whole server under load; this says
where the CPU of one request goes, without the HTTP layer, the event loop or
the other workers. Simulated citizens run whole tests through
:func:`nangluc.service.sessions.start_session` and
:func:`~nangluc.service.sessions.answer` (what the API handlers call) on a
fresh PostgreSQL schema (or SQLite file), one request at a time. Each
request's CPU time is the calling thread's (``time.thread_time``: the
database server's own work is not in it), split into

- starts, answers that go on, and the last answers of tests (which also
  write the result);
- the engine step inside those answers (:func:`nangluc.engine.answer_item`),
  and the same steps (same states, items and responses) replayed afterwards
  back to back, as ``benchmarks.engine_step`` runs them. A step costs more
  between database calls and request handling than in a tight loop (the
  processor's caches hold other things), which the ratio shows.

The figure is the last line printed, e.g.::

    service path: answer 1.02 ms CPU (engine 0.55 ms; 0.30 ms back to back), start 1.29 ms, last answer 1.60 ms

Run: ``python -m benchmarks.service_path [--tests 300]
[--database-url postgresql://postgres@127.0.0.1:5432/test | sqlite:///PATH]``.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.service_load import DEFAULT_POSTGRES, _Schema


@dataclass(frozen=True)
class PathResult:
    starts: int
    answers: int  # answers after which the test goes on
    last_answers: int
    start_ms: float  # mean CPU per start
    answer_ms: float  # mean CPU per answer that goes on
    last_answer_ms: float  # mean CPU per last answer (stores the result too)
    engine_ms: float  # mean CPU of the engine step inside the answers
    engine_back_to_back_ms: float  # the same steps replayed in a tight loop

    def line(self) -> str:
        return (
            f"service path: answer {self.answer_ms:.2f} ms CPU (engine {self.engine_ms:.2f} ms; "
            f"{self.engine_back_to_back_ms:.2f} ms back to back), start {self.start_ms:.2f} ms, "
            f"last answer {self.last_answer_ms:.2f} ms"
        )


def run(database_url: str, tests: int, seed: int = 0, warm_up: int = 30) -> PathResult:
    """Run ``warm_up`` then ``tests`` whole tests on the database and time them."""
    from threadpoolctl import threadpool_limits

    from nangluc.service import sessions
    from nangluc.service.settings import Settings
    from nangluc.service.store import Database

    threadpool_limits(1)  # as the service runs
    db = Database(Settings(database_url=database_url))
    db.setup()
    step = sessions.answer_item
    steps: list[tuple] = []
    step_seconds: list[float] = []

    def timed_step(*args):
        begin = time.thread_time()
        try:
            return step(*args)
        finally:
            step_seconds.append(time.thread_time() - begin)
            steps.append(args)

    rng = random.Random(seed)
    times: dict[str, list[float]] = {"start": [], "answer": [], "last": []}

    def take(n: int) -> None:
        for k in range(n):
            begin = time.thread_time()
            view = sessions.start_session(db, ward=f"ward-{k % 20}")
            times["start"].append(time.thread_time() - begin)
            item = view.item
            while item is not None:
                response = rng.randrange(len(item["options"]))
                begin = time.thread_time()
                view = sessions.answer(db, view.session_id, item["id"], response)
                spent = time.thread_time() - begin
                item = view.item
                times["answer" if item is not None else "last"].append(spent)

    sessions.answer_item = timed_step
    try:
        take(warm_up)
        for values in times.values():
            values.clear()
        steps.clear()
        step_seconds.clear()
        take(tests)
    finally:
        sessions.answer_item = step
        db.dispose()
    # The same steps again, back to back.
    begin = time.thread_time()
    for args in steps:
        step(*args)
    back_to_back = (time.thread_time() - begin) / len(steps)

    def mean_ms(values: list[float]) -> float:
        return float(np.mean(values) * 1000) if values else float("nan")

    return PathResult(
        starts=len(times["start"]),
        answers=len(times["answer"]),
        last_answers=len(times["last"]),
        start_ms=mean_ms(times["start"]),
        answer_ms=mean_ms(times["answer"]),
        last_answer_ms=mean_ms(times["last"]),
        engine_ms=mean_ms(step_seconds),
        engine_back_to_back_ms=back_to_back * 1000,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300, help="whole tests timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL server (a fresh schema is used), or sqlite:///PATH",
    )
    args = parser.parse_args(argv)
    if args.tests < 1:
        parser.error("--tests must be >= 1")
    if args.database_url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as directory:
            url = args.database_url
            if url in ("sqlite", "sqlite://", "sqlite:///"):
                url = f"sqlite:///{Path(directory) / 'path.db'}"
            result = run(url, args.tests, args.seed)
    else:
        schema = _Schema(args.database_url)
        try:
            result = run(schema.url, args.tests, args.seed)
        finally:
            schema.drop()
    print(
        f"{result.starts} starts, {result.answers} answers that go on, "
        f"{result.last_answers} last answers ({args.database_url.split(':')[0]})"
    )
    print(result.line())


if __name__ == "__main__":
    main()
