"""Planner reports: how finished tests spread over the levels, by ward or age group."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine import LEVELS
from nangluc.engine.scoring import level_index
from nangluc.service.banks import NotFoundError
from nangluc.service.db import SESSION
from nangluc.service.sessions import FINISHED
from nangluc.service.store import Database

GROUP_COLUMNS = {"ward": SESSION.c.ward, "age_group": SESSION.c.age_group}


@dataclass
class _Group:
    sessions: int = 0
    level_counts: np.ndarray | None = None
    overall_sum: float = 0.0
    area_sums: dict[str, float] | None = None
    area_counts: dict[str, int] | None = None


def level_report(
    db: Database,
    *,
    group_by: str | None = None,
    language: str = "vi",
    min_group: int | None = None,
) -> dict[str, Any]:
    """Count and share of finished sessions per level, with the areas' mean scores.

    Parameters
    ----------
    group_by : {"ward", "age_group"} or None
        One group per distinct value (sessions without the attribute form the
        group ``None``); None reports all finished sessions as one group.
    language : {"vi", "en"}
        Language of level and area names.
    min_group : int, optional
        Groups with fewer finished sessions are ``suppressed``: their count
        is shown, their level counts, shares and mean scores are not (None,
        no areas). Default: the database's ``settings.report_min_group``.
    """
    if min_group is None:
        min_group = db.settings.report_min_group
    if group_by is not None and group_by not in GROUP_COLUMNS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_COLUMNS)}, got {group_by!r}")
    column = GROUP_COLUMNS[group_by] if group_by else sa.null()
    query = sa.select(column.label("grp"), SESSION.c.overall_score, SESSION.c.area_scores).where(
        SESSION.c.status == FINISHED
    )
    groups: dict[str | None, _Group] = defaultdict(_Group)
    with db.engine.connect() as conn:
        for row in conn.execution_options(yield_per=2000).execute(query):
            group = groups[row.grp]
            if group.level_counts is None:
                group.level_counts = np.zeros(len(LEVELS), dtype=int)
                group.area_sums, group.area_counts = defaultdict(float), defaultdict(int)
            group.sessions += 1
            # The level follows from the stored score (rows stored before levels were
            # numbered by their codes hold the old 0-based number in overall_level).
            group.level_counts[int(level_index(row.overall_score))] += 1
            group.overall_sum += row.overall_score
            for area in row.area_scores or ():
                group.area_sums[area["area"]] += area["score"]
                group.area_counts[area["area"]] += 1
        try:
            loaded = db.banks.get(db.banks.active_version(conn), conn)
            area_name = loaded.area_name
        except (NotFoundError, LookupError, RuntimeError):
            area_name = lambda code, _language: code  # noqa: E731 - no active bank: codes only

    def sort_key(name: str | None) -> tuple[bool, str]:
        return (name is None, name or "")

    out_groups = []
    for name in sorted(groups, key=sort_key):
        group = groups[name]
        shown = group.sessions >= min_group
        out_groups.append(
            {
                "group": name,
                "sessions": group.sessions,
                "suppressed": not shown,
                "levels": [
                    {
                        "level": level.code,
                        "name": level.name(language),
                        "count": int(group.level_counts[index]) if shown else None,
                        "share": (
                            float(group.level_counts[index] / group.sessions) if shown else None
                        ),
                    }
                    for index, level in enumerate(LEVELS)
                ],
                "overall_mean": group.overall_sum / group.sessions if shown else None,
                "areas": [
                    {
                        "area": code,
                        "name": area_name(code, language),
                        "mean_score": group.area_sums[code] / group.area_counts[code],
                    }
                    for code in sorted(group.area_sums)
                ]
                if shown
                else [],
            }
        )
    return {
        "group_by": group_by,
        "sessions": sum(g.sessions for g in groups.values()),
        "min_group": min_group,
        "levels": [
            {
                "level": level.code,
                "name": level.name(language),
                "lower": level.lower,
                "upper": level.upper,
            }
            for level in LEVELS
        ],
        "groups": out_groups,
    }
