"""Calibration at scale: 1,000,000 respondents x 20 responses over the 173-item bank.

Run: ``python -m benchmarks.calibration_scale [--persons N] [--per-person K] [--seed S]``.

Simulates sparse responses (each simulee answers 20 random criteria; area
abilities correlated 0.7) from "true" parameters that differ from the shipped
bank's (a scaled by exp(N(0, 0.2)), every threshold of an item shifted by
N(0, 0.4), seeded), so that the fit, which starts from the current bank as a
researcher's recalibration does, does not start at the truth. Writes the long
CSV, then times the whole ``nangluc calibrate`` process (reading, fitting
3PL/graded items per area, standard errors, linking to the shipped bank,
writing the bank file) and its peak memory (RUSAGE_CHILDREN ru_maxrss). The
data generation is not timed. Target (DESIGN §5): under 60 s and 4 GB.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nangluc.calibration.synthetic import simulate_sparse, write_csv
from nangluc.items import DEFAULT_BANK_PATH, load_bank


def calibrate_command() -> list[str]:
    """The console script when installed, else the module."""
    script = shutil.which("nangluc") or str(Path(sys.executable).with_name("nangluc"))
    if Path(script).exists():
        return [script, "calibrate"]
    return [sys.executable, "-m", "nangluc.calibration.cli"]


def perturbed(bank, rng: np.random.Generator):
    """The bank with seeded changes to every item's discrimination and location."""
    discrimination = np.clip(
        bank.discrimination * np.exp(rng.normal(0.0, 0.2, bank.n_items)), 0.4, 3.0
    )
    thresholds = bank.thresholds + rng.normal(0.0, 0.4, bank.n_items)[:, None]  # +inf padding stays
    return dataclasses.replace(
        bank, discrimination=discrimination, thresholds=thresholds, version="truth"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--per-person", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20241018)
    parser.add_argument(
        "--keep", type=Path, default=None, help="directory to keep the CSV and bank in"
    )
    args = parser.parse_args(argv)

    doc = load_bank()
    bank = perturbed(doc.item_bank, np.random.default_rng(args.seed + 1))
    workdir = Path(tempfile.mkdtemp(prefix="nangluc-cal-")) if args.keep is None else args.keep
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path, out_path = workdir / "responses.csv", workdir / "calibrated.json"
    out_path.unlink(missing_ok=True)
    started = time.perf_counter()
    data = simulate_sparse(bank, args.persons, args.per_person, np.random.default_rng(args.seed))
    write_csv(csv_path, bank, data)
    print(
        f"generated {data.person.size:,} responses of {args.persons:,} simulees "
        f"({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    del data
    command = [
        *calibrate_command(),
        str(csv_path),
        "--model",
        "auto",
        "--bank",
        str(DEFAULT_BANK_PATH),
        "--out",
        str(out_path),
        "--no-progress",
    ]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    # the repository root first on the path, so the console script runs this checkout
    root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    completed = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_gb = usage.ru_maxrss * 1024 / 1e9
    cpu_s = usage.ru_utime + usage.ru_stime
    print(completed.stdout[-3000:])
    if completed.returncode != 0:
        print(completed.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"calibrate failed with exit code {completed.returncode}")
    fitted = json.loads(out_path.read_text(encoding="utf-8"))
    a_err, b_err = [], []
    for item in fitted["items"]:
        i = bank.index(item["id"])
        true_thresholds = bank.thresholds[i, : bank.n_categories[i] - 1]
        a_err.append(item["a"] - bank.discrimination[i])
        b_err.append(np.mean(item.get("thresholds", [item.get("b")])) - np.mean(true_thresholds))
    print(
        f"recovery: RMSE a {np.sqrt(np.mean(np.square(a_err))):.3f}, "
        f"RMSE b (mean threshold) {np.sqrt(np.mean(np.square(b_err))):.3f}"
    )
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"calibration {args.persons:,} x {args.per_person}: {seconds:.1f} s, peak RSS {peak_gb:.2f} GB "
        f"(CPU {cpu_s:.1f} s; load average {os.getloadavg()[0]:.1f}; target < 60 s, < 4 GB)"
    )


if __name__ == "__main__":
    main()
