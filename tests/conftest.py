"""Shared fixtures: small seeded banks built in code (no files needed)."""

from __future__ import annotations

import numpy as np
import pytest

from nangluc.engine.bank import ItemBank


def make_bank(
    n_items: int = 60,
    n_areas: int = 5,
    seed: int = 0,
    models: tuple[str, ...] = ("3pl", "grm", "2pl"),
    version: str = "test-bank",
    pretest: int = 0,
) -> ItemBank:
    """A mixed-format bank with realistic parameters, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    ids, areas, kinds, model_list, a, thresholds, c = [], [], [], [], [], [], []
    for i in range(n_items):
        model = models[i % len(models)]
        area = str(1 + i % n_areas)
        ids.append(f"{area}.1.{i:03d}")
        areas.append(area)
        model_list.append(model)
        b = float(rng.normal(0.0, 1.2))
        if model == "grm":
            steps = np.sort(rng.normal(0.0, 1.0, size=3))
            thresholds.append(list(b + steps * 0.9 + np.array([-0.3, 0.0, 0.3])))
            a.append(float(rng.uniform(0.8, 2.5)))
            kinds.append("skill" if i % 2 else "attitude")
            c.append(0.0)
        elif model in ("gpcm", "pcm"):
            # Step parameters in no particular order (reversals are legitimate).
            thresholds.append(list(b + rng.normal(0.0, 0.8, size=3)))
            a.append(float(rng.uniform(0.6, 1.8)) if model == "gpcm" else 1.0)
            kinds.append("skill" if i % 2 else "attitude")
            c.append(0.0)
        else:
            thresholds.append([b])
            a.append(float(rng.uniform(0.6, 2.0)) if model != "1pl" else 1.0)
            kinds.append("knowledge")
            c.append(0.25 if model == "3pl" else 0.0)
    operational = [True] * (n_items - pretest) + [False] * pretest
    return ItemBank.from_items(
        version=version,
        item_ids=ids,
        areas=areas,
        models=model_list,
        discrimination=a,
        thresholds=thresholds,
        guessing=c,
        kinds=kinds,
        operational=operational,
    )


def grid_loglik(bank: ItemBank, items, responses) -> np.ndarray:
    """One taker's per-area log-likelihood on the quadrature grid, (1, A, Q)."""
    from nangluc.engine.tables import bank_tables

    tables = bank_tables(bank)
    loglik = np.zeros((1, bank.n_areas, tables.quadrature.size))
    for i, r in zip(items, responses, strict=True):
        loglik[0, bank.area[i]] += tables.log_prob[i, r]
    return loglik


@pytest.fixture(scope="session")
def mixed_bank() -> ItemBank:
    return make_bank()


@pytest.fixture(scope="session")
def every_model_bank() -> ItemBank:
    """All six models mixed in one bank."""
    return make_bank(
        n_items=60, seed=3, models=("2pl", "3pl", "grm", "1pl", "gpcm", "pcm"), version="every"
    )


@pytest.fixture(scope="session")
def big_bank() -> ItemBank:
    return make_bank(n_items=173, seed=1, version="big")
