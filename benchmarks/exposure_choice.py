"""Evidence for the citizen test's exposure control: accuracy and length against exposure.

The same simulees (DESIGN's population: multivariate normal, mean 0, SD 1,
inter-area correlation 0.7) take the citizen test on the shipped bank under
each exposure control below; everything else stays as in
:data:`nangluc.engine.CITIZEN_TEST`. Sympson–Hetter control parameters are
derived on other simulees of the same population (``--derive`` of them), so
the exposure figures are those of new test takers. Printed per control:
overall level accuracy, mean / max scored items, the highest item exposure,
the share of items given to more than half of the test takers, and the mean
test overlap (items two test takers share / mean length).

The last line names the control that gives the lowest maximum exposure
among those that keep the citizen test's accuracy and length goals
(accuracy >= 0.86 and >= 94% of answering every item, <= 20 items on
average, never more than 40), and its figures.

``--write`` also derives the citizen test's own Sympson–Hetter parameters
(target :data:`nangluc.engine.citizen_exposure.TARGET`) on the ``--derive``
simulees and writes them, by item id, to ``engine/citizen_exposure.py``.

Run: ``python -m benchmarks.exposure_choice [--bank FILE] [--examinees N] [--derive N] [--seed S] [--write]``
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nangluc.engine import CITIZEN_TEST, Randomesque, RandomStart, citizen_exposure
from nangluc.items import load_bank
from nangluc.simulations import draw_population, full_bank_scores, run
from nangluc.simulations.exposure import sympson_hetter_control


def candidates() -> dict:
    base = replace(CITIZEN_TEST, start=None)
    return {
        f"{CITIZEN_TEST.name} as shipped (Sympson-Hetter {citizen_exposure.TARGET}, by item id)": (
            CITIZEN_TEST
        ),
        "none": replace(base, name="x-none", exposure=None),
        "randomesque k=2 (citizen-v1 until #16)": replace(
            base, name="x-r2", exposure=Randomesque(2)
        ),
        "randomesque k=3": replace(base, name="x-r3", exposure=Randomesque(3)),
        "randomesque k=5": replace(base, name="x-r5", exposure=Randomesque(5)),
        "random start k=8, randomesque k=2": replace(
            base, name="x-s8r2", exposure=Randomesque(2), start=RandomStart(k=8)
        ),
        "random start k=8, randomesque k=3": replace(
            base, name="x-s8r3", exposure=Randomesque(3), start=RandomStart(k=8)
        ),
    }


SYMPSON_HETTER_TARGETS = (0.7, 0.6, 0.5, 0.35, 0.25)


def write_citizen_control(bank, control: np.ndarray) -> None:
    """Write the parameters below 1 to engine/citizen_exposure.py (by item id)."""
    path = Path(citizen_exposure.__file__)
    text = path.read_text(encoding="utf-8")
    head = text[: text.index("CONTROL: tuple")]
    head = head.replace(
        f'BANK_VERSION = "{citizen_exposure.BANK_VERSION}"', f'BANK_VERSION = "{bank.version}"'
    )
    rows = [
        f'    ("{bank.item_ids[i]}", {round(float(k), 3)}),'
        for i, k in enumerate(control)
        if k < 0.9995 and bank.operational[i]
    ]
    body = "CONTROL: tuple[tuple[str, float], ...] = (\n" + "\n".join(rows) + "\n)\n"
    path.write_text(head + body, encoding="utf-8")
    print(f"wrote {len(rows)} control parameters to {path}")


def figures(result, full_accuracy: float) -> dict:
    s = result.summary
    return {
        "accuracy": s["level_accuracy"],
        "relative": s["level_accuracy"] / full_accuracy,
        "mean_items": s["mean_items"],
        "max_items": int(result.length.max()),
        "max_exposure": float(result.exposure.max()),
        "over_half": float(np.mean(result.exposure > 0.5)),
        "overlap": s["overlap"],
        "seconds": s["seconds"],
    }


def show(name: str, f: dict) -> None:
    print(
        f"{name:40s} accuracy {f['accuracy']:.3f} ({f['relative']:.1%})  items {f['mean_items']:5.1f} "
        f"(max {f['max_items']:2d})  max exposure {f['max_exposure']:.2f}  items >50% "
        f"{f['over_half']:.1%}  overlap {f['overlap']:.2f}",
        flush=True,
    )


def meets_goals(f: dict) -> bool:
    return (
        f["accuracy"] >= 0.86
        and f["relative"] >= 0.94
        and f["mean_items"] <= 20
        and f["max_items"] <= 40
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examinees", type=int, default=10_000)
    parser.add_argument("--derive", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bank", default=None, help="bank file (default: the shipped bank)")
    parser.add_argument(
        "--write", action="store_true", help="write the citizen test's parameters (see above)"
    )
    args = parser.parse_args()

    bank = load_bank(args.bank).item_bank
    truth = draw_population(args.examinees, bank.n_areas, 0.7, np.random.default_rng(args.seed))
    derive = draw_population(args.derive, bank.n_areas, 0.7, np.random.default_rng(args.seed + 9))
    full = full_bank_scores(bank, CITIZEN_TEST, truth, np.random.default_rng(args.seed + 2))
    full_accuracy = full.summary["level_accuracy"]
    print(
        f"bank {bank.version}: {args.examinees} simulees; all {full.summary['items']} items: "
        f"accuracy {full_accuracy:.3f}",
        flush=True,
    )
    rows = {}
    for name, config in candidates().items():
        result = run(
            bank, config, truth, np.random.default_rng(args.seed + 1), workers=args.workers
        )
        rows[name] = figures(result, full_accuracy)
        show(name, rows[name])
    for target in SYMPSON_HETTER_TARGETS:
        started = time.perf_counter()
        base = replace(CITIZEN_TEST, exposure=None, start=None)
        calibration = sympson_hetter_control(
            bank, base, derive, np.random.default_rng(args.seed + 5), max_rate=target,
            workers=args.workers,
        )  # fmt: skip
        result = run(
            bank, calibration.config, truth, np.random.default_rng(args.seed + 1),
            workers=args.workers,
        )  # fmt: skip
        name = f"Sympson-Hetter {target} (derived {time.perf_counter() - started:.0f} s)"
        rows[name] = figures(result, full_accuracy)
        show(name, rows[name])
        if args.write and target == citizen_exposure.TARGET:
            write_citizen_control(bank, np.asarray(calibration.control))
    eligible = {name: f for name, f in rows.items() if meets_goals(f)}
    if not eligible:
        print("no exposure control keeps the accuracy and length goals")
        return
    best = min(
        eligible, key=lambda name: (eligible[name]["max_exposure"], -eligible[name]["accuracy"])
    )
    f = eligible[best]
    print(
        f"lowest max exposure within the goals: {best}: max exposure {f['max_exposure']:.2f}, "
        f"accuracy {f['accuracy']:.3f}, {f['mean_items']:.1f} items"
    )


if __name__ == "__main__":
    main()
