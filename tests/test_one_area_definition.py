"""Evidence for issue #14: a one-area, 10-item test defined in a file equals the same rules in code.

``nangluc simulate --test items/data/tests/an-toan-so.toml`` (area 4, at most
10 questions) against the rules written as a ``TestConfig`` by hand
(:mod:`benchmarks.one_area_test`, which prints the figures at 20,000 simulees).
The service and page side of the same file: tests/test_named_test_browser.py.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.one_area_test import DEFINITION, compare
from nangluc.simulations.cli import simulate

EXAMINEES, SEED = 1500, 7


def test_the_file_and_the_code_are_the_same_test(tmp_path):
    out = tmp_path / "area4.json"
    result = CliRunner().invoke(
        simulate,
        ["--test", str(DEFINITION), "--examinees", str(EXAMINEES), "--seed", str(SEED),
         "--no-references", "--json", str(out), "--workers", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from_cli = json.loads(out.read_text(encoding="utf-8"))
    assert from_cli["test"]["name"] == "an-toan-so" and from_cli["bank"]["areas"] == ["4"]
    # One area in scope: the overall result is area 4's.
    assert from_cli["level_accuracy"] == from_cli["area_level_accuracy"]["4"]
    assert 4 <= from_cli["mean_items"] <= 10 and from_cli["length"]["max"] <= 10

    figures = compare(EXAMINEES, SEED)
    # The CLI and the benchmark's file route are one path...
    assert figures["file"]["level_accuracy"] == from_cli["level_accuracy"]
    assert figures["file"]["mean_items"] == from_cli["mean_items"]
    # ...and the rules written in code give the same test on the same simulees.
    assert figures["difference_same_simulees"] == 0
    assert figures["code_same_simulees"]["mean_items"] == from_cli["mean_items"]
    # On other simulees the difference is sampling noise (3 SE; 0.2 points at 20,000).
    assert abs(figures["difference_other_simulees"]) <= 3 * figures["difference_se"]
