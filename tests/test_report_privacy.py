"""Attacks on the planner reports by someone who holds a planner key and can take tests.

The issue's findings, each turned into an attack with many planted citizens
(trials). The attacker knows everything about their own tests (how many, and
each one's result) and reads reports through the API; a trial succeeds when
the attacker's guess of the planted citizen's overall score is within ±5
points of it. Each attack must fail in at least 80% of trials.

* **padding**: the citizen is alone in a ward; the attacker adds enough tests
  of their own to make the ward visible, then subtracts them;
* **differencing in time**: the ward's report before and after the period in
  which the citizen finished;
* **differencing across groups**: the ward's report minus its visible ward ×
  age group cells leaves the citizen's hidden cell;
* **repeated-query averaging**: the padding attack, asked many times and in
  windows that hold the same periods, averaged.

Planted citizens' abilities are spread over the whole scale, so guessing
blindly hits ±5 about one time in ten. A last test attacks the release
mechanism itself, with the optimal (Bayesian) reading of the raw noisy
histograms, and checks that the same reading of exact counts would succeed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from nangluc.engine import CITIZEN_TEST, LEVELS
from nangluc.engine.scoring import area_scores
from nangluc.engine.tables import bank_tables
from nangluc.service import privacy, synthetic
from nangluc.service.db import BANK
from nangluc.service.statistics import OBSERVED_BINS, OBSERVED_WIDTH, observed_bin
from nangluc.service.wards import load_wards
from nangluc.simulations import draw_population
from service_fixtures import PLANNER_KEY, app_client

API = "/api/v1"
PLANNER = {"X-API-Key": PLANNER_KEY}
Q2 = datetime(2026, 5, 10, tzinfo=UTC)
Q3 = datetime(2026, 8, 10, tzinfo=UTC)
TRIALS = 30
PADDING = 130
REQUIRED_FAILURE = 0.8


def _victims(bank, rng, n):
    """Citizens whose true overall scores are spread evenly over 12..92.

    Even on the score scale (not on the ability scale, where the score curve
    would bunch them), so that a blind guess — or any fixed guess — lands
    within ±5 points about one time in eight.
    """
    grid = np.linspace(-5, 5, 2001)
    overall = area_scores(bank, np.repeat(grid[:, None], bank.n_areas, axis=1)) @ (
        bank_tables(bank).scored_area_weights
    )
    target = rng.uniform(12, 92, n)
    theta = np.interp(target, overall, grid)
    return theta[:, None] + rng.normal(0, 0.2, (n, bank.n_areas))


def _midpoint(level_index: int) -> float:
    level = LEVELS[level_index]
    return (level.lower + min(level.upper, 100.0)) / 2


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """One database: victims and the attacker's own tests, in 90 wards, two quarters."""
    directory: Path = tmp_path_factory.mktemp("privacy")
    url = f"sqlite:///{directory / 'privacy.db'}"
    with app_client(url, directory, report_simulees=2000) as client:
        db = client.app.state.db
        with db.engine.begin() as conn:
            conn.execute(BANK.update().values(created=datetime(2026, 4, 1, tzinfo=UTC)))
        with db.engine.connect() as conn:
            bank = db.banks.get(db.banks.active_version(conn)).bank
        rng = np.random.default_rng(2026)
        wards = [u.code for u in load_wards().units]
        names = {u.code: u.full_name for u in load_wards().units}
        rows, known = [], {}
        # The attacker's own tests: drawn from one simulated pool (their results
        # are what the attacker knows; which simulee took them does not matter).
        pool, _ = synthetic.simulated_rows(
            bank, CITIZEN_TEST, draw_population(1500, bank.n_areas, 0.7, rng), rng, finished=Q2
        )

        def pad(n, finished, ward, age=None):
            picked = [dict(pool[i]) for i in rng.choice(len(pool), n, replace=False)]
            for row in picked:
                row.update(
                    id=uuid.uuid4(),
                    ward=names[ward],
                    age_group=age,
                    created=finished,
                    updated=finished,
                    finished=finished,
                )
            rows.extend(picked)
            return np.array([r["overall_score"] for r in picked])

        def victim(finished, ward, age=None):
            part, _ = synthetic.simulated_rows(
                bank,
                CITIZEN_TEST,
                _victims(bank, rng, 1),
                rng,
                finished=finished,
                ward=names[ward],
                age_group=age,
            )
            rows.extend(part)
            return part[0]["overall_score"]

        victims = {}
        for i, ward in enumerate(wards[: 3 * TRIALS]):
            attack = ("padding", "time", "groups")[i // TRIALS]
            if attack == "padding":
                victims[ward] = victim(Q2, ward)
                known[ward] = pad(PADDING, Q2, ward)
            elif attack == "time":
                known[ward] = pad(PADDING, Q2, ward)  # visible before the citizen's test
                victims[ward] = victim(Q3, ward)
                known[(ward, "Q3")] = pad(PADDING // 2, Q3, ward)
            else:
                victims[ward] = victim(Q2, ward, "under-15")
                known[ward] = pad(2 * PADDING, Q2, ward, "25-34")
        synthetic.insert_rows(db.engine, rows)
        yield client, wards, victims, known


def _report(client, **params):
    reply = client.get(f"{API}/reports/levels", params=params, headers=PLANNER)
    assert reply.status_code == 200, reply.text
    return {g["key"]: g for g in reply.json()["groups"]}


def _level_guess(group, n_total, own_scores):
    """The level whose count exceeds the attacker's own count the most -> its midpoint."""
    own = np.bincount(
        np.searchsorted([lv.lower for lv in LEVELS[1:]], own_scores, side="right"),
        minlength=len(LEVELS),
    )
    excess = np.array([lv["value"] for lv in group["levels"]]) * n_total - own
    return _midpoint(int(np.argmax(excess)))


def _failure_rate(guesses, truths, name=""):
    guesses, truths = np.asarray(guesses, dtype=float), np.asarray(truths, dtype=float)
    hits = np.abs(guesses - truths) <= 5.0
    hits[np.isnan(guesses)] = False  # nothing to read is a failed attack
    print(f"{name}: within ±5 points in {hits.sum()} of {hits.size} trials")  # shown with -s
    return 1.0 - hits.mean()


def test_padding_attack_fails(planted) -> None:
    client, wards, victims, known = planted
    report = _report(client, group_by="ward", **{"from": "2026-04-01", "to": "2026-06-30"})
    targets = wards[:TRIALS]
    by_mean, by_level, shown = [], [], 0
    for ward in targets:
        group, own = report[ward], known[ward]
        if not group["shown"]:
            by_mean.append(np.nan)
            by_level.append(np.nan)
            continue
        shown += 1
        n = own.size + 1  # the attacker knows how many tests the ward holds
        by_mean.append(n * group["mean"]["value"] - own.sum())
        by_level.append(_level_guess(group, n, own))
    truths = [victims[w] for w in targets]
    # The planted scores are spread: the best fixed guess hits few of them.
    best_fixed = max(np.mean(np.abs(np.array(truths) - g) <= 5) for g in range(0, 101))
    assert best_fixed <= 0.3, best_fixed
    # Padding works as the attacker wants: most wards become visible ...
    assert shown >= TRIALS * 0.7, shown
    # ... and still give the planted citizen away in at most one trial in five.
    assert _failure_rate(by_mean, truths, "padding, from the mean") >= REQUIRED_FAILURE
    assert _failure_rate(by_level, truths, "padding, from the levels") >= REQUIRED_FAILURE


def test_differencing_in_time_fails(planted) -> None:
    client, wards, victims, known = planted
    before = _report(client, group_by="ward", **{"from": "2026-04-01", "to": "2026-06-30"})
    after = _report(client, group_by="ward", **{"from": "2026-04-01", "to": "2026-09-30"})
    targets = wards[TRIALS : 2 * TRIALS]
    guesses = []
    for ward in targets:
        a, b = before[ward], after[ward]
        if not (a["shown"] and b["shown"]):
            guesses.append(np.nan)
            continue
        n_a, own_q3 = known[ward].size, known[(ward, "Q3")]
        n_b = n_a + own_q3.size + 1
        guesses.append(n_b * b["mean"]["value"] - n_a * a["mean"]["value"] - own_q3.sum())
    assert np.isfinite(guesses).mean() >= 0.7  # the attack had figures to read
    truths = [victims[w] for w in targets]
    assert _failure_rate(guesses, truths, "differencing in time") >= REQUIRED_FAILURE


def test_differencing_across_groups_fails(planted) -> None:
    client, wards, victims, known = planted
    window = {"from": "2026-04-01", "to": "2026-06-30"}
    ward_report = _report(client, group_by="ward", **window)
    cells = _report(client, group_by="ward_age_group", **window)
    targets = wards[2 * TRIALS : 3 * TRIALS]
    guesses = []
    for ward in targets:
        whole, visible = ward_report[ward], cells[f"{ward}|25-34"]
        if not (whole["shown"] and visible["shown"]):
            guesses.append(np.nan)
            continue
        n_visible = known[ward].size
        guesses.append(
            (n_visible + 1) * whole["mean"]["value"] - n_visible * visible["mean"]["value"]
        )
    assert np.isfinite(guesses).mean() >= 0.7  # the attack had figures to read
    truths = [victims[w] for w in targets]
    assert _failure_rate(guesses, truths, "differencing across groups") >= REQUIRED_FAILURE


def test_repeated_query_averaging_gains_nothing(planted) -> None:
    client, wards, victims, known = planted
    windows = [
        {"from": "2026-04-01", "to": "2026-06-30"},
        {"from": "2026-03-15", "to": "2026-07-15"},
        {"from": "2026-04-01", "to": "2026-07-01"},
    ]
    reports = [_report(client, group_by="ward", **w) for w in windows for _ in range(4)]
    # Every answer is the same release recombined: identical figures, no fresh noise.
    assert all(r == reports[0] for r in reports[1:])
    targets = wards[:TRIALS]
    averaged = []
    for ward in targets:
        own = known[ward]
        estimates = [
            (own.size + 1) * r[ward]["mean"]["value"] - own.sum()
            for r in reports
            if r[ward]["shown"]
        ]
        averaged.append(np.mean(estimates) if estimates else np.nan)
    truths = [victims[w] for w in targets]
    assert _failure_rate(averaged, truths, "repeated queries, averaged") >= REQUIRED_FAILURE


def test_the_release_mechanism_resists_the_optimal_attack() -> None:
    """A Bayesian attacker reading the raw noisy histograms of the victim's cells.

    The attacker knows every other test in the victim's ward and ward x age
    cells (padding), and, most generously, in the whole city: each histogram
    is then the victim's one count plus noise:
    the posterior over the victim's overall-score bin (uniform prior) follows
    from the discrete Laplace likelihoods of both tables. Its best guess, the
    centre of the likeliest bin, must be within ±5 points in at most 20% of
    trials; on exact counts the same reading is always right.
    """
    trials = 2000
    rng = np.random.default_rng(7)
    scores = rng.uniform(5.0, 95.0, trials)
    true_bin = observed_bin(scores)
    onehot = np.eye(OBSERVED_BINS, dtype=np.int64)[true_bin]
    log_odds = np.zeros((trials, OBSERVED_BINS))
    exact = np.zeros((trials, OBSERVED_BINS))
    for table in ("all", "ward", "ward_age_group"):
        noise = privacy.table_noise(table, privacy.DEFAULT_EPSILON, 5).overall
        released = privacy.add_noise(onehot, noise.scale)  # OpenDP, as in a release
        # log P(victim in bin k) - log P(not) for each bin, from each table.
        log_odds += (np.abs(released) - np.abs(released - 1)) / noise.scale
        exact += onehot
    centre = (np.argmax(log_odds, axis=1) + 0.5) * OBSERVED_WIDTH
    success = np.abs(centre - scores) <= 5.0
    print(f"optimal reading of the release: within ±5 points in {success.mean():.1%} of trials")
    assert 1.0 - success.mean() >= REQUIRED_FAILURE, success.mean()
    exact_centre = (np.argmax(exact, axis=1) + 0.5) * OBSERVED_WIDTH
    assert (np.abs(exact_centre - scores) <= 5.0).all()
