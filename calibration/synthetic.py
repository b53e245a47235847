"""Seeded synthetic response data for recovery tests and benchmarks.

Sparse by design, like data from adaptive tests: every simulee answers a
random subset of the items (missing responses are absent entries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nangluc.engine import irt
from nangluc.engine.bank import ItemBank


@dataclass(frozen=True)
class SyntheticResponses:
    """Long-form responses: ``person``, ``item`` (bank index), ``response``; true ``theta`` (N x areas)."""

    person: np.ndarray
    item: np.ndarray
    response: np.ndarray
    theta: np.ndarray


def simulate_sparse(
    bank: ItemBank,
    n_persons: int,
    per_person: int,
    rng: np.random.Generator,
    *,
    correlation: float = 0.7,
    chunk: int = 100_000,
) -> SyntheticResponses:
    """Each simulee answers ``per_person`` distinct random items of ``bank``.

    Area abilities are multivariate normal (mean 0, SD 1, equal
    correlation ``correlation`` between areas); a response to an item of
    area A is drawn at the simulee's theta_A.
    """
    if not 1 <= per_person <= bank.n_items:
        raise ValueError(f"per_person must be between 1 and {bank.n_items}, got {per_person}")
    if n_persons < 1:
        raise ValueError("n_persons must be at least 1")
    k = bank.n_areas
    cov = np.full((k, k), correlation) + (1.0 - correlation) * np.eye(k)
    theta = rng.multivariate_normal(np.zeros(k), cov, size=n_persons)
    items = np.empty((n_persons, per_person), dtype=np.int32)
    responses = np.empty((n_persons, per_person), dtype=np.int16)
    for start in range(0, n_persons, chunk):
        stop = min(start + chunk, n_persons)
        keys = rng.random((stop - start, bank.n_items))
        chosen = np.argpartition(keys, per_person - 1, axis=1)[:, :per_person]
        items[start:stop] = chosen
        who = np.repeat(np.arange(start, stop), per_person)
        flat = chosen.ravel()
        responses[start:stop] = irt.simulate_responses(
            bank, theta[who, bank.area[flat]], flat, rng
        ).reshape(stop - start, per_person)
    return SyntheticResponses(
        person=np.repeat(np.arange(n_persons, dtype=np.int32), per_person),
        item=items.ravel(),
        response=responses.ravel(),
        theta=theta,
    )


def write_csv(path, bank: ItemBank, data: SyntheticResponses) -> None:
    """Write the long CSV of DESIGN §3 (pyarrow when installed, else the csv module)."""
    ids = np.array([f"r{p:07d}" for p in range(data.theta.shape[0])], dtype=object)
    item_ids = np.array(bank.item_ids, dtype=object)
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        import csv

        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["respondent_id", "item_id", "response"])
            writer.writerows(
                zip(ids[data.person], item_ids[data.item], data.response.tolist(), strict=True)
            )
        return
    table = pa.table(
        {
            "respondent_id": pa.array(ids).take(pa.array(data.person)),
            "item_id": pa.array(item_ids).take(pa.array(data.item)),
            "response": pa.array(data.response.astype(np.int8)),
        }
    )
    pacsv.write_csv(table, str(path), write_options=pacsv.WriteOptions(quoting_style="none"))


def bank_document(
    bank: ItemBank, *, version: str = "synthetic-1", status: str = "calibrated"
) -> dict:
    """A bare bank document (DESIGN §3) with ``bank``'s parameters, for tests and benchmarks."""
    from nangluc.engine.bank import MODELS

    items = []
    for i, item_id in enumerate(bank.item_ids):
        model = MODELS[bank.model[i]]
        entry: dict = {
            "id": item_id,
            "area": bank.area_codes[bank.area[i]],
            "model": model,
            "a": float(bank.discrimination[i]),
        }
        thresholds = bank.thresholds[i, : bank.n_categories[i] - 1]
        if model in ("grm", "gpcm", "pcm"):
            entry["thresholds"] = [float(t) for t in thresholds]
        else:
            entry["b"] = float(thresholds[0])
        if model == "3pl":
            entry["c"] = float(bank.guessing[i])
        entry["status"] = "operational" if bank.operational[i] else "pretest"
        items.append(entry)
    return {"version": version, "status": status, "items": items}


def write_responses_csv(path, ids: np.ndarray, items: np.ndarray, responses: np.ndarray) -> None:
    """Small CSV writer for tests: parallel columns of respondent ids, item ids, responses."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("respondent_id,item_id,response\n")
        f.writelines(f"{p},{i},{int(r)}\n" for p, i, r in zip(ids, items, responses, strict=True))
