"""Differential item functioning found on simulated data with planted DIF.

Run: ``python -m benchmarks.dif_planted [--persons N] [--per-person K] [--planted P] [--shift S] [--seed S]``.

Simulated citizens answer ``per-person`` random items of the shipped bank
(sparse, as from adaptive tests). Half are the reference group (abilities
N(0, 1)), half the focal group with a lower mean (N(-0.5, 1): impact, which a
DIF method must not mistake for DIF). For ``planted`` items (every tenth
item by default) the focal group meets a harder item: every location
(b or graded thresholds) is ``shift`` higher for them. Everything else is
the same. :func:`nangluc.calibration.dif.dif_analysis` then runs on the
responses with the shipped bank as the anchor scale.

Prints the share of planted items flagged (power) and of the other items
flagged (false flags), with the Mantel-Haenszel classes. Goal (issue 15):
power >= 90%, false flags <= 5%.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nangluc.calibration import ResponseData
from nangluc.calibration.dif import dif_analysis
from nangluc.engine import irt
from nangluc.engine.bank import MODELS, ItemBank
from nangluc.items import load_bank


def shifted(bank: ItemBank, items: np.ndarray, shift: float) -> ItemBank:
    """The bank with the locations of ``items`` moved by ``shift``."""
    thresholds = bank.thresholds.copy()
    finite = np.isfinite(thresholds)
    rows = np.zeros(bank.n_items, dtype=bool)
    rows[items] = True
    thresholds[rows[:, None] & finite] += shift
    return ItemBank.from_items(
        version=bank.version + "-dif",
        item_ids=bank.item_ids,
        areas=[bank.area_codes[a] for a in bank.area],
        models=[MODELS[m] for m in bank.model],
        discrimination=bank.discrimination,
        thresholds=[t[np.isfinite(t)].tolist() for t in thresholds],
        guessing=bank.guessing,
    )


def simulate(persons: int, per_person: int, planted: np.ndarray, shift: float, seed: int):
    document = load_bank()
    bank = document.item_bank
    focal_bank = shifted(bank, planted, shift)
    rng = np.random.default_rng(seed)
    group = np.where(np.arange(persons) < persons // 2, "reference", "focal")
    theta = rng.normal(np.where(group == "focal", -0.5, 0.0)[:, None], 1.0, (persons, bank.n_areas))
    keys = rng.random((persons, bank.n_items))
    items = np.argpartition(keys, per_person - 1, axis=1)[:, :per_person]
    who = np.repeat(np.arange(persons), per_person)
    flat = items.ravel()
    response = np.empty(flat.size, dtype=np.int16)
    for label, b in (("reference", bank), ("focal", focal_bank)):
        mine = group[who] == label
        response[mine] = irt.simulate_responses(
            b, theta[who[mine], b.area[flat[mine]]], flat[mine], rng
        )
    ids = np.array([f"p{p:06d}" for p in range(persons)])
    data = ResponseData.from_arrays(
        ids[who], np.array(bank.item_ids)[flat], response, bank=document
    )
    labels = dict(zip(ids, group, strict=True))
    return document, data, np.array([labels[r] for r in data.respondent_ids])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=8000)
    parser.add_argument("--per-person", type=int, default=60)
    parser.add_argument("--planted", type=int, default=10, help="every k-th item has DIF")
    parser.add_argument("--shift", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    document = load_bank()
    planted = np.arange(0, len(document.items), args.planted)
    started = time.perf_counter()
    document, data, groups = simulate(args.persons, args.per_person, planted, args.shift, args.seed)
    simulated = time.perf_counter() - started
    started = time.perf_counter()
    result = dif_analysis(data, document, groups, reference="reference")
    seconds = time.perf_counter() - started
    planted_ids = {document.items[i].id for i in planted}
    flagged = {r.item_id for r in result.flagged}
    power = len(flagged & planted_ids) / len(planted_ids)
    others = len(document.items) - len(planted_ids)
    false_rate = len(flagged - planted_ids) / others
    ets = {c: sum(1 for r in result.rows if r.ets == c and r.item_id in planted_ids) for c in "ABC"}
    ets_null = {
        c: sum(1 for r in result.rows if r.ets == c and r.item_id not in planted_ids) for c in "ABC"
    }
    print(
        f"{args.persons:,} simulees ({args.per_person} items each, focal mean -0.5), "
        f"{len(planted_ids)} items with DIF (locations +{args.shift} for the focal group); "
        f"simulated in {simulated:.1f} s, DIF analysis {seconds:.1f} s"
    )
    print(f"Mantel-Haenszel classes, DIF items: {ets}; other items: {ets_null}")
    missed = sorted(planted_ids - flagged)
    if missed:
        print(f"missed: {', '.join(missed)}")
    wrong = sorted(flagged - planted_ids)
    if wrong:
        print(f"false flags: {', '.join(wrong)}")
    print(
        f"DIF found for {power:.1%} of planted items (goal >= 90%); false flags {false_rate:.1%} "
        f"of the others (goal <= 5%)"
    )


if __name__ == "__main__":
    main()
