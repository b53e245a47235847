"""nangluc's simulator against catsim on the same bank, simulees and rules.

    python -m benchmarks.simulation_vs_catsim [--examinees 2000] [--seed 0]

Both run a 173-item 2PL bank (seeded a and b, one area) with the same rules:
start at theta = 0, maximum Fisher information, maximum likelihood, stop when
the standard error is <= 0.3 (no length limit but the bank), on the same true
abilities (standard normal). Both are timed in this one process on one core
(catsim runs one simulee at a time; nangluc runs all in lockstep, in-process,
with one BLAS thread); the speed-up is the ratio of CPU times, which other
work on the machine disturbs far less than wall-clock time (printed too).

What still differs (so the figures are close, not identical):

* both use Dodd's heuristic for all-correct / all-wrong patterns (move half
  way to the hardest / easiest item): nangluc's ``MLE(extreme="dodd")``;
* catsim maximises the likelihood with a bounded scalar search on [-6, 6];
  nangluc refines the best point of its quadrature grid with Fisher scoring
  (bounded at +-6 here);
* catsim stops when SE < 0.3, nangluc when SE <= 0.3;
* the responses are drawn from each program's own random stream.

The goal (DESIGN §5): mean length and RMSE within 5% of catsim's, at least
50x faster per simulee. The last line printed is the comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from nangluc.engine import MLE, MaximumInformation, TestConfig, ThetaStandardError
from nangluc.simulations import run, synthetic_bank

SE_TARGET = 0.3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulation_vs_catsim", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--examinees", type=int, default=2000, help="simulees run through both (default 2000)"
    )
    parser.add_argument(
        "--items", type=int, default=173, help="items in the 2PL bank (default 173)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.examinees < 1 or args.items < 2:
        parser.error("need --examinees >= 1 and --items >= 2")
    try:
        from catsim.estimation import NumericalSearchEstimator
        from catsim.initialization import FixedPointInitializer
        from catsim.item_bank import ItemBank as CatsimBank
        from catsim.selection import MaxInfoSelector
        from catsim.simulation import Simulator
        from catsim.stopping import MinErrorStopper
    except ImportError:
        print("catsim is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    rng = np.random.default_rng(args.seed)
    bank = synthetic_bank(rng, n_items=args.items, n_areas=1, model="2pl", version="bench-2pl")
    true_theta = rng.standard_normal(args.examinees)
    config = TestConfig(
        name="catsim-rules",
        estimator=MLE(bound=6.0, extreme="dodd"),
        selector=MaximumInformation(),
        stopping=(ThetaStandardError(SE_TARGET),),
        min_items=1,
        max_items=bank.n_items,
        min_information=0.0,
    )
    print(f"bank: {bank.n_items} 2PL items, a in [{bank.discrimination.min():.2f}, {bank.discrimination.max():.2f}], "
          f"b in [{bank.thresholds[:, 0].min():.2f}, {bank.thresholds[:, 0].max():.2f}]; "
          f"{args.examinees:,} simulees ~ N(0, 1); cores available: {len(os.sched_getaffinity(0))}")  # fmt: skip

    # nangluc: all simulees in lockstep, in this process (one core, like catsim).
    run(
        bank, config, true_theta[:8, None], np.random.default_rng(args.seed + 1)
    )  # warm the bank's tables
    started, cpu_started = time.perf_counter(), time.process_time()
    # All simulees in one lockstep batch (the default chunks of 1024 would pay
    # the long tail of the few 173-item tests twice).
    ours = run(
        bank,
        config,
        true_theta[:, None],
        np.random.default_rng(args.seed + 1),
        workers=1,
        chunk_size=true_theta.size,
    )
    ours_seconds = time.perf_counter() - started
    ours_cpu = time.process_time() - cpu_started
    ours_length = float(ours.length.mean())
    ours_rmse = float(np.sqrt(np.mean((ours.theta[:, 0] - true_theta) ** 2)))
    ours_bias = float(np.mean(ours.theta[:, 0] - true_theta))

    items = np.column_stack(
        [bank.discrimination, bank.thresholds[:, 0], np.zeros(bank.n_items), np.ones(bank.n_items)]
    )
    simulator = Simulator(CatsimBank(items), true_theta, seed=args.seed + 2)
    started, cpu_started = time.perf_counter(), time.process_time()
    simulator.simulate(
        FixedPointInitializer(0.0),
        MaxInfoSelector(),
        NumericalSearchEstimator(),
        MinErrorStopper(SE_TARGET),
    )
    catsim_seconds = time.perf_counter() - started
    catsim_cpu = time.process_time() - cpu_started
    estimates = np.asarray(simulator.latest_estimations, dtype=float)
    catsim_length = float(np.mean([len(a) for a in simulator.administered_items]))
    catsim_rmse = float(np.sqrt(np.mean((estimates - true_theta) ** 2)))
    catsim_bias = float(np.mean(estimates - true_theta))

    n = args.examinees
    ours_lengths = ours.length
    catsim_lengths = np.array([len(a) for a in simulator.administered_items])
    print(f"{'':8} {'seconds':>8} {'CPU s':>7} {'CPU ms/simulee':>15} {'mean length':>12} {'median':>7} "
          f"{'> 60 items':>10} {'RMSE':>7} {'bias':>7}")  # fmt: skip
    for name, seconds, cpu, lengths, rmse, bias in (
        ("nangluc", ours_seconds, ours_cpu, ours_lengths, ours_rmse, ours_bias),
        ("catsim", catsim_seconds, catsim_cpu, catsim_lengths, catsim_rmse, catsim_bias),
    ):
        print(
            f"{name:8} {seconds:8.2f} {cpu:7.2f} {1000 * cpu / n:15.3f} {lengths.mean():12.2f} "
            f"{np.median(lengths):7.1f} {int(np.sum(lengths > 60)):10d} {rmse:7.3f} {bias:7.3f}"
        )
    stopped = float(np.mean(ours.stop_reason == "theta_se"))
    print(f"nangluc stop reasons: {stopped:.1%} reached SE <= {SE_TARGET}; "
          f"length range {ours.length.min()}-{ours.length.max()}")  # fmt: skip
    # CPU time of this process: both run on one core here, and it is far less
    # disturbed than wall-clock time by other work on the machine.
    speedup = catsim_cpu / ours_cpu
    print(
        f"wall-clock ratio {catsim_seconds / ours_seconds:.1f}x; load average {os.getloadavg()[0]:.1f}"
    )
    length_gap = abs(ours_length - catsim_length) / catsim_length
    rmse_gap = abs(ours_rmse - catsim_rmse) / catsim_rmse
    print(
        f"nangluc vs catsim: {speedup:.1f}x faster per simulee (CPU time); "
        f"mean length {ours_length:.1f} vs {catsim_length:.1f} ({length_gap:.1%}); "
        f"RMSE {ours_rmse:.3f} vs {catsim_rmse:.3f} ({rmse_gap:.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
