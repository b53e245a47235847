"""Machine instructions per adaptive-test step, counted by valgrind (repeatable where time is not).

``benchmarks.engine_step`` times a step; on a shared machine its figure moves
by a third from one hour to the next. This counts the instructions the
CPU executes for the same work under ``valgrind --tool=callgrind``, which
gives the same count whatever else the machine is doing: a child Python
runs ``--tests`` seeded ``citizen-v2`` tests (simulated citizens answer at
random) through :func:`nangluc.engine.answer_item`, and a second child does
everything but the tests; the difference, divided by the number of steps,
is the cost of a step (imports, table building and start-up cancel out).

Needs valgrind on the PATH (Debian's ``valgrind``); runs for a minute or two.

Run: ``python -m benchmarks.engine_instructions [--tests 20]``; the last line is
the figure, e.g. ``engine step 2418 k instructions``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What each child runs: warm up (tables, caches), then ``n`` tests.
CHILD = """
import random, sys
from threadpoolctl import threadpool_limits
threadpool_limits(1)
from nangluc.engine import CITIZEN_TEST, answer_item, start_test
from nangluc.items import load_bank
bank = load_bank().item_bank
rng = random.Random(0)

def run(n, first):
    steps = 0
    for seed in range(first, first + n):
        state = start_test(bank, CITIZEN_TEST, seed=seed)
        while not state.finished:
            item = bank.index(state.next_item)
            response = rng.randrange(int(bank.n_categories[item]))
            state = answer_item(bank, CITIZEN_TEST, state, state.next_item, response)
            steps += 1
    return steps

run(5, 10_000)
print("steps", run(int(sys.argv[1]), 0))
"""


def count(tests: int) -> tuple[int, int]:
    """Instructions executed by a child running ``tests`` tests, and its number of steps."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        + [sys.executable, "-c", CHILD, str(tests)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    collected = re.search(r"Collected : (\d+)", done.stderr)
    steps = re.search(r"^steps (\d+)", done.stdout, re.MULTILINE)
    if collected is None or steps is None:
        raise RuntimeError(f"unexpected valgrind output: {done.stderr[-500:]}")
    return int(collected.group(1)), int(steps.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20, help="tests in the measured child")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    base, _ = count(0)
    total, steps = count(args.tests)
    print(f"{steps} steps of {args.tests} citizen-v2 tests; {total - base:,} instructions")
    print(f"engine step {(total - base) / steps / 1000:.0f} k instructions")


if __name__ == "__main__":
    main()
