"""100,000 simulees through the default citizen test: the whole CLI process, timed.

    python -m benchmarks.simulation_scale [--examinees 100000] [--workers N]

Runs ``nangluc simulate --examinees 100000`` (the console script if it is
installed, else ``python -m nangluc.simulations``) as a subprocess with its defaults —
the shipped bank, the default citizen test, reference points on the first
10,000 simulees — and times the process from start to exit, imports and
process start-up included. The goal (DESIGN §5): under 60 s on 2 cores.
The last line printed is the result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command() -> list[str]:
    """``nangluc simulate`` if the console script is installed, else ``python -m nangluc.simulations``."""
    script = Path(sys.executable).with_name("nangluc")
    if script.exists() or shutil.which("nangluc"):
        return [str(script if script.exists() else shutil.which("nangluc")), "simulate"]
    return [sys.executable, "-m", "nangluc.simulations"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulation_scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--examinees", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=None, help="passed to --workers (default: all cores)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "summary.json"
        cmd = [*command(), "--examinees", str(args.examinees), "--seed", str(args.seed), "--no-progress",
               "--json", str(out)]  # fmt: skip
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        print("$ " + " ".join(cmd), flush=True)
        load = os.getloadavg()
        started = time.perf_counter()
        # This checkout's packages first, whatever an (editable) install maps.
        path = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
        done = subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            print(f"nangluc simulate failed with exit code {done.returncode}", file=sys.stderr)
            return 1
        summary = json.loads(out.read_text(encoding="utf-8"))
    refs = summary.get("references", {})
    print(f"cores available: {len(os.sched_getaffinity(0))}; workers: {summary['workers']}; "
          f"bank {summary['bank']['version']} ({summary['bank']['items']} items); config {summary['name']}")  # fmt: skip
    print(f"CAT simulation {summary['seconds']:.1f} s; with references (first {refs.get('examinees', 0):,} "
          f"simulees: true-θ selection and full bank) {summary['total_seconds']:.1f} s")  # fmt: skip
    print(f"mean items {summary['mean_items']:.2f}, level accuracy {summary['level_accuracy']:.3f}, "
          f"RMSE {summary['rmse']:.2f} points, bias {summary['bias']:+.2f}")  # fmt: skip
    cpu = usage.ru_utime + usage.ru_stime
    print(f"CPU time of the process and its workers: {cpu:.1f} s; load average before the run: "
          f"{load[0]:.1f} (other work on the machine slows the wall-clock figure)")  # fmt: skip
    print(f"simulate {args.examinees:,} simulees: {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
