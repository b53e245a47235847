"""The benchmarks' own arithmetic, and short runs of `service_path` and `score_forms`."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.service_load import Load, Phase, ramp_for
from benchmarks.service_path import run as run_service_path


def test_paced_clients_arrive_over_one_mean_test_duration() -> None:
    # 64 clients offering 500 answers/s answer every 0.128 s each; a test of 15 answers lasts 1.92 s.
    assert ramp_for(500.0, 64, 15.0) == pytest.approx(1.92)
    assert ramp_for(250.0, 64, 15.0) == pytest.approx(3.84)


def test_a_phase_counts_only_its_window_and_reports_the_opening_apart() -> None:
    load = Load(
        latencies=[0.010] * 98 + [0.100, 0.200],
        start_latencies=[0.020, 0.040],
        opening=[0.500, 0.600],
        finished=7,
        errors=0,
        elapsed=2.0,
    )
    phase = Phase.of(load)
    assert phase.answers == 100 and phase.answers_per_second == 50.0
    assert phase.p50_ms == pytest.approx(10.0)
    assert 100.0 < phase.p99_ms < 200.0  # the opening's 500-600 ms are not in it
    assert phase.opening_answers == 2 and phase.opening_p99_ms == pytest.approx(599.0)
    assert phase.start_p99_ms == pytest.approx(39.8)
    empty = Phase.of(Load([], [], [], 0, 3, 1.0))
    assert empty.answers == 0 and math.isnan(empty.p99_ms) and math.isnan(empty.start_p99_ms)


def test_service_path_times_whole_tests_and_the_engine_inside_them(tmp_path: Path) -> None:
    result = run_service_path(f"sqlite:///{tmp_path / 'path.db'}", tests=3, warm_up=1)
    assert result.starts == result.last_answers == 3
    assert result.answers >= 3 * 3  # the citizen test asks at least 5 items
    # The engine step is part of an answer's CPU time.
    assert 0 < result.engine_ms < result.answer_ms
    assert result.engine_back_to_back_ms > 0
    assert result.start_ms > 0 and result.last_answer_ms > 0
    assert result.line().startswith("service path: answer ")


def test_score_forms_benchmark_runs_and_finds_both_ways_agree(capsys) -> None:
    from benchmarks.score_forms import main

    main(["--respondents", "30", "--items", "12"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("score forms: 30 respondents in ") and "one by one" in last
