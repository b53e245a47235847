"""Finished tests made by simulation and stored as the service stores them (tests, benchmarks).

The report pipeline reads only the columns a finished test leaves behind
(bank version, rules, ward, age group, cohort, finish time, result columns
and the observed bins of :func:`nangluc.service.statistics.encode_bins`). To
test it at scale, simulees take the real adaptive test in the engine's
simulator and their rows are inserted in bulk. Their ``state`` is a stub:
these sessions cannot be resumed or read through the session API.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine.bank import ItemBank
from nangluc.engine.config import TestConfig
from nangluc.service.db import SESSION
from nangluc.service.statistics import encode_bins, observed_scores


def simulated_rows(
    bank: ItemBank,
    config: TestConfig,
    true_theta: np.ndarray,
    rng: np.random.Generator,
    *,
    finished: Sequence[datetime] | datetime,
    ward: Sequence[str | None] | str | None = None,
    age_group: Sequence[str | None] | str | None = None,
    cohort: str | None = None,
    phase: Sequence[str | None] | str | None = None,
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Rows of finished sessions for simulees with abilities ``true_theta`` (N, A).

    Returns the rows and the simulees' true overall scores (N,).
    """
    from nangluc.simulations import run

    result = run(bank, config, true_theta, rng)
    overall, areas = observed_scores(bank, result.items, result.responses)
    n = true_theta.shape[0]

    def column(value: Any) -> list[Any]:
        if isinstance(value, str | datetime) or value is None:
            return [value] * n
        values = list(value)
        if len(values) != n:
            raise ValueError(f"need {n} values, got {len(values)}")
        return values

    finished_at, wards, ages, phases = (column(v) for v in (finished, ward, age_group, phase))
    scores = result.scores
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": uuid.uuid4(),
                "bank_version": bank.version,
                "config": config.name,
                "language": "vi",
                "ward": wards[i],
                "age_group": ages[i],
                "cohort": cohort,
                "cohort_phase": phases[i] if cohort else None,
                "status": "finished",
                "state": {"synthetic": True},
                "answered": int(result.length[i]),
                "lock_version": int(result.length[i]),
                "created": finished_at[i],
                "updated": finished_at[i],
                "finished": finished_at[i],
                "overall_score": float(scores.overall_score[i]),
                "overall_se": float(scores.overall_se[i]),
                "overall_level": int(scores.overall_level[i]),
                "overall_decided": True,
                "area_scores": [],
                "report_bins": encode_bins(overall[i], areas[i]),
            }
        )
    return rows, result.true_scores.overall_score


def insert_rows(engine: sa.Engine, rows: list[dict[str, Any]], *, batch: int = 5000) -> None:
    """Insert session rows in batches (one transaction each)."""
    for lo in range(0, len(rows), batch):
        with engine.begin() as conn:
            conn.execute(SESSION.insert(), rows[lo : lo + batch])
