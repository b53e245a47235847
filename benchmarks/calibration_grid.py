"""Accuracy of the default quadrature and convergence settings on real data.

Run: ``python -m benchmarks.calibration_grid [--data NAME ...] [--model auto|2pl|grm]``.

For each real data set of :mod:`benchmarks.real_data` (held out from the
project: LSAT-6, LSAT-7, the General Social Survey's abortion items, the IPIP
Big Five, verbal aggression), with priors off (``--prior none``):

1. nangluc's default calibration (grid chosen from the data and verified,
   default tolerance);
2. a reference fit on a fine grid (321 points on [-8, 8], spacing 0.05)
   with tolerance 1e-6.

Both sets of estimates are then evaluated on the fine grid
(:func:`nangluc.calibration.run.bank_loglik`). Two gaps are printed:

* optimum: log-likelihood of the reference optimum minus that of the
  default estimates, both on the fine grid (how far from the maximum the
  default settings stop);
* reported: the log-likelihood nangluc reports minus the reference optimum
  (how accurate the reported figure is).

Goal (issue 15): both within 0.05 on every data set. The last line says
whether every gap was.
"""

from __future__ import annotations

import argparse
import time

from benchmarks import real_data
from nangluc.calibration import Priors, calibrate_bank
from nangluc.calibration.run import bank_loglik
from nangluc.items import bank_from_dict

GOAL = 0.05
REFERENCE = {"n_quadrature": 321, "quadrature_bound": 8.0, "tol": 1e-6, "max_iter": 20_000}


def check(name: str, model: str = "auto", *, reference_points: int = 321) -> dict:
    """Default versus fine-grid reference on one data set (priors off).

    ``reference_points`` on [-8, 8] (321: spacing 0.05; tests use 161, 0.1).
    """
    real = real_data.load(name)
    started = time.perf_counter()
    default = calibrate_bank(real.data, model=model, priors=Priors.none(), min_responses=1)
    seconds = time.perf_counter() - started
    settings = {**REFERENCE, "n_quadrature": reference_points}
    reference = calibrate_bank(real.data, model=model, priors=Priors.none(), **settings)
    fine = {"n_quadrature": reference_points, "quadrature_bound": REFERENCE["quadrature_bound"]}
    on_fine_default = bank_loglik(real.data, bank_from_dict(default.document), **fine)["total"]
    on_fine_reference = bank_loglik(real.data, bank_from_dict(reference.document), **fine)["total"]
    areas = default.document["metadata"]["calibration"]["fit"]["areas"]
    grids = {code: area["quadrature"] for code, area in areas.items()}
    return {
        "name": name,
        "description": real.description,
        "seconds": seconds,
        "iterations": default.fit.iterations,
        "converged": default.fit.converged,
        "grid_points": sorted({g["points"] for g in grids.values()}),
        "grid_checks": sum(len(g["checks"]) for g in grids.values()),
        "reported": default.fit.loglik,
        "reference": reference.fit.loglik,
        "reference_on_fine": on_fine_reference,
        "default_on_fine": on_fine_default,
        "optimum_gap": on_fine_reference - on_fine_default,
        "reported_gap": default.fit.loglik - on_fine_reference,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=list(real_data.NAMES), choices=real_data.NAMES)
    parser.add_argument("--model", default="auto", choices=("auto", "2pl", "grm"))
    args = parser.parse_args(argv)
    worst = 0.0
    for name in args.data:
        row = check(name, args.model)
        worst = max(worst, abs(row["optimum_gap"]), abs(row["reported_gap"]))
        print(
            f"{row['name']:13s} {row['description']}\n"
            f"    default: {row['seconds']:.2f} s, {row['iterations']} E-steps, grid {row['grid_points']} points "
            f"({row['grid_checks']} check(s)), reported log-likelihood {row['reported']:.4f}\n"
            f"    fine-grid reference optimum {row['reference_on_fine']:.4f}; default estimates on the "
            f"fine grid {row['default_on_fine']:.4f}\n"
            f"    optimum gap {row['optimum_gap']:+.4f}, reported gap {row['reported_gap']:+.4f}"
        )
    verdict = "within" if worst <= GOAL else "NOT within"
    print(f"largest gap {worst:.4f} log-likelihood units: {verdict} the goal of {GOAL}")


if __name__ == "__main__":
    main()
