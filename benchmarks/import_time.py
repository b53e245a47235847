"""Start-up cost of the light core (DESIGN §5: each < 0.3 s).

Times, as a user sees them, in fresh processes:

* ``python -c "import nangluc.engine"`` — what an app pays to embed the engine;
* ``nangluc --help`` — the console script.

Each command runs ``--runs`` times (after one warm-up run, so the file cache
is warm); the median and the maximum wall time are printed, beside a bare
``python -c pass`` for the interpreter's own start-up on this machine.

Run: ``python -m benchmarks.import_time [--runs N]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall_times(command: list[str], runs: int, cwd: str) -> list[float]:
    subprocess.run(command, check=True, capture_output=True, cwd=cwd)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=cwd)
        times.append(time.perf_counter() - started)
    return times


def console_script() -> list[str]:
    script = shutil.which("nangluc") or str(Path(sys.executable).with_name("nangluc"))
    if not Path(script).exists():
        raise SystemExit("the nangluc console script is not installed (pip install -e .)")
    return [script]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.import_time")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    # Run outside the checkout, as an app would: only the installed package is importable.
    cwd = tempfile.gettempdir()
    commands = {
        "python -c pass (interpreter only)": [sys.executable, "-c", "pass"],
        'python -c "import nangluc.engine"': [sys.executable, "-c", "import nangluc.engine"],
        "nangluc --help": [*console_script(), "--help"],
    }
    results = {}
    for name, command in commands.items():
        times = wall_times(command, args.runs, cwd)
        results[name] = times
        print(
            f"{name:38s} median {statistics.median(times):.3f} s   max {max(times):.3f} s"
            f"   ({args.runs} runs)"
        )
    engine = statistics.median(results['python -c "import nangluc.engine"'])
    cli = statistics.median(results["nangluc --help"])
    print(
        f"start-up (goal < 0.3 s each): import nangluc.engine {engine:.3f} s, nangluc --help {cli:.3f} s"
    )


if __name__ == "__main__":
    main()
