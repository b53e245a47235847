"""How far along a test is, for the citizen page and apps (issue #11).

The test is adaptive, so its length is not known in advance. The estimate
comes from a simulation of the shipped test (``service/static/test-length.json``,
written by ``python -m nangluc.simulations.page_length``): a table of the share
done by the number of questions answered and how sure the level already is
(the state's ``level_probability``; the test stops when it reaches 0.9).
Tests whose bank or rules the table was not made for get no estimate.
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_right
from pathlib import Path
from typing import Any

from nangluc.engine import TestState

LENGTH_FILE = Path(__file__).resolve().parent / "static" / "test-length.json"


@functools.cache
def length_figures() -> dict[str, Any] | None:
    """The simulated length figures, or None if the file is missing or unreadable."""
    try:
        return json.loads(LENGTH_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def estimated_progress(state: TestState) -> float | None:
    """Share of the test done (0..0.95 while going, 1 when finished), or None if unknown."""
    if state.finished:
        return 1.0
    figures = length_figures()
    if (
        figures is None
        or figures.get("config") != state.config
        or figures.get("bank_version") != state.bank_version
        or state.level_probability is None
    ):
        return None
    table = figures["progress"]["by_answered"]
    edges = figures["progress"]["probability_edges"][1:-1]
    row = table[min(state.answered, len(table) - 1)]
    return float(row[bisect_right(edges, state.level_probability)])
