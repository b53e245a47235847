"""Synthetic item banks for simulation studies, tests and benchmarks."""

from __future__ import annotations

import numpy as np

from nangluc.engine.bank import MODELS, ItemBank


def synthetic_bank(
    rng: np.random.Generator,
    *,
    n_items: int = 173,
    n_areas: int = 5,
    model: str = "2pl",
    version: str = "synthetic",
) -> ItemBank:
    """A bank with randomly drawn item parameters, items spread evenly over areas.

    Discriminations are log-normal around 1.2 (clipped to [0.4, 2.5]) and
    difficulties standard normal, the usual shape of a calibrated bank.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_items : int
        Number of items (>= n_areas).
    n_areas : int
        Number of areas, coded ``"1"`` .. ``str(n_areas)``.
    model : {"2pl", "3pl", "grm", "mixed"}
        ``mixed`` cycles through 2PL, 3PL and 4-category graded items.
    version : str

    Returns
    -------
    ItemBank
    """
    if model not in (*MODELS, "mixed"):
        raise ValueError(f"model must be one of {', '.join((*MODELS, 'mixed'))}, got {model!r}")
    if n_areas < 1 or n_items < n_areas:
        raise ValueError(
            f"need n_areas >= 1 and n_items >= n_areas, got {n_items} items, {n_areas} areas"
        )
    models = [MODELS[i % 3] if model == "mixed" else model for i in range(n_items)]
    a = np.clip(np.exp(rng.normal(np.log(1.2), 0.3, n_items)), 0.4, 2.5)
    b = rng.normal(0.0, 1.0, n_items)
    steps = np.cumsum(rng.uniform(0.4, 1.2, (n_items, 3)), axis=1)
    thresholds = [
        (b[i] - steps[i, 1] + steps[i]).tolist() if m == "grm" else [float(b[i])]
        for i, m in enumerate(models)
    ]
    guessing = np.where(np.array(models) == "3pl", rng.uniform(0.1, 0.25, n_items), 0.0)
    areas = [str(1 + i * n_areas // n_items) for i in range(n_items)]
    return ItemBank.from_items(
        version=version,
        item_ids=[f"{areas[i]}.{i + 1:03d}" for i in range(n_items)],
        areas=areas,
        models=models,
        discrimination=a.tolist(),
        thresholds=thresholds,
        guessing=guessing.tolist(),
        area_codes=[str(k + 1) for k in range(n_areas)],
    )
