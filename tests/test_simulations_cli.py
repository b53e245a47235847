"""``nangluc simulate``: flags, JSON summary, grids, reports and clear errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nangluc.simulations.cli import simulate

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--examinees", "150", "--reference-examinees", "100", "--workers", "1", "--no-progress"]
TIMING_KEYS = {"seconds", "seconds_per_simulee", "total_seconds", "process_seconds"}


@pytest.fixture(scope="module")
def bare_bank(tmp_path_factory) -> Path:
    """A bare bank file: only id, area, model and parameters per item (two areas)."""
    rng = np.random.default_rng(21)
    items = []
    for i in range(36):
        area = "1" if i < 18 else "2"
        item = {"id": f"{area}.{i:02d}", "area": area, "a": round(float(rng.uniform(0.8, 2.0)), 3)}
        if i % 6 == 5:
            item.update(
                model="grm", thresholds=sorted(round(float(x), 3) for x in rng.normal(0, 1, 2))
            )
        else:
            item.update(model="2pl", b=round(float(rng.normal(0, 1)), 3))
        items.append(item)
    path = tmp_path_factory.mktemp("bank") / "bare.json"
    path.write_text(json.dumps({"version": "bare-test-1", "items": items}), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(simulate, list(args), catch_exceptions=False)


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def test_simulate_prints_the_json_summary_and_writes_it(bare_bank, tmp_path):
    out = tmp_path / "summary.json"
    result = invoke("--bank", str(bare_bank), *FAST, "--json", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert json.loads(out.read_text(encoding="utf-8")) == summary
    for key in ("examinees", "mean_items", "rmse", "bias", "level_accuracy", "seconds"):
        assert key in summary
    assert summary["examinees"] == 150
    assert 0 <= summary["level_accuracy"] <= 1 and summary["rmse"] > 0
    assert set(summary["theta_rmse"]) == {"1", "2"}
    assert summary["bank"]["version"] == "bare-test-1" and summary["bank"]["items"] == 36
    refs = summary["references"]
    assert refs["examinees"] == 100 and refs["full_bank"]["items"] == 36
    assert refs["true_theta_selection"]["mean_items"] > 0
    assert refs["length_vs_true_theta_selection"] > 0
    assert "not a bound" in refs["true_theta_selection"]["rule"]
    assert "oracle" not in json.dumps(refs)
    # Stated probabilities of the overall level against how often they came true.
    bins = summary["probability_calibration"]
    assert sum(b["n"] for b in bins) == 150
    assert all(0 <= b["stated"] <= 1 and 0 <= b["observed"] <= 1 for b in bins)
    assert [b["stated"] for b in bins] == sorted(b["stated"] for b in bins)
    assert 0 <= summary["settled"] <= 1 and 0 < summary["mean_stated_probability"] <= 1
    assert summary["level_confusion"]["codes"] == [1, 2, 3, 4, 5]


def test_same_seed_same_numbers(bare_bank):
    first = invoke("--bank", str(bare_bank), *FAST, "--seed", "7")
    again = invoke("--bank", str(bare_bank), *FAST, "--seed", "7")
    other = invoke("--bank", str(bare_bank), *FAST, "--seed", "8")
    assert without_timing(json.loads(first.output)) == without_timing(json.loads(again.output))
    assert json.loads(first.output)["rmse"] != json.loads(other.output)["rmse"]


def test_flags_change_the_rules(bare_bank):
    result = invoke(
        "--bank", str(bare_bank), *FAST, "--selector", "mfi", "--estimator", "mle", "--stop-se", "0.5",
        "--min-items", "3", "--max-items", "8", "--exposure", "randomesque:2", "--correlation", "0.3",
        "--no-references",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    config = summary["config"]
    assert config["selector"]["rule"] == "MaximumInformation"
    assert config["estimator"]["rule"] == "MLE"
    assert config["stopping"] == [{"rule": "ThetaStandardError", "target": 0.5}]
    assert config["exposure"] == {"rule": "Randomesque", "k": 2}
    assert summary["length"]["min"] >= 3 and summary["length"]["max"] <= 8
    assert summary["population"]["correlation"] == 0.3
    assert "references" not in summary


def test_population_from_csv(bare_bank, tmp_path):
    csv = tmp_path / "pop.csv"
    rows = "\n".join(f"p{i},{x:.3f},{-x:.3f}" for i, x in enumerate(np.linspace(-2, 2, 40)))
    csv.write_text("id,1,2\n" + rows + "\n", encoding="utf-8")
    result = invoke("--bank", str(bare_bank), *FAST, "--population", str(csv), "--no-references")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["examinees"] == 40
    assert summary["population"]["source"] == str(csv)


def test_grid_runs_designs_side_by_side_on_the_same_simulees(bare_bank, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        "[defaults]\nmax_items = 10\n\n[designs.short]\nmax_items = 5\n\n[designs.long]\n"
        '\n[designs.sh]\nexposure = "sympson-hetter:0.5"\n',
        encoding="utf-8",
    )
    result = invoke(
        "--bank", str(bare_bank), *FAST, "--grid", str(grid), "--report", str(tmp_path / "rep")
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    names = [d["name"] for d in output["designs"]]
    assert names == ["short", "long", "sh"]
    short, long, sh = output["designs"]
    assert short["length"]["max"] <= 5 < long["length"]["max"] + 1
    assert short["mean_items"] <= long["mean_items"]
    assert sh["exposure_control"]["max_rate"] == 0.5
    report = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "Designs side by side" in report and "**short**" in report and "**sh**" in report
    assert (tmp_path / "rep" / "comparison.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "3-sh-exposure.png").stat().st_size > 1000


def test_report_has_every_plot_and_the_references(bare_bank, tmp_path):
    target = tmp_path / "report"
    result = invoke("--bank", str(bare_bank), *FAST, "--report", str(target))
    assert result.exit_code == 0, result.output
    names = {p.name for p in target.iterdir()}
    assert {
        "report.md",
        "summary.json",
        "conditional.png",
        "length.png",
        "confusion.png",
        "calibration.png",
        "exposure.png",
    } <= names
    for png in target.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (target / "report.md").read_text(encoding="utf-8")
    assert (
        "Reference points" in text
        and "all operational items" in text
        and "items chosen at the true θ" in text
    )
    assert "![Level confusion](confusion.png)" in text
    assert json.loads((target / "summary.json").read_text(encoding="utf-8"))["examinees"] == 150
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bank", "missing.json"], "bank file missing.json does not exist"),
        (["--exposure", "fastest"], "exposure 'fastest' is not one of"),
        (["--stop-se", "-1"], "must be > 0"),
        (["--min-items", "9", "--max-items", "3"], "exceeds max_items"),
        (["--correlation", "1.5"], "correlation must be a number in [0, 1]"),
        (["--dask"], "--dask runs the designs of a grid"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --dask"),
        (["--config", "nope"], 'config: unknown config: "nope"'),
    ],
)
def test_bad_input_is_a_clear_error_without_output(bare_bank, tmp_path, args, message):
    out = tmp_path / "out.json"
    args = [a if a != "missing.json" else str(tmp_path / "missing.json") for a in args]
    message = message.replace("missing.json", str(tmp_path / "missing.json"))
    result = CliRunner().invoke(
        simulate, ["--bank", str(bare_bank), *FAST, "--json", str(out), *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_invalid_bank_and_population_files(tmp_path, bare_bank):
    broken = tmp_path / "broken.json"
    broken.write_text(
        '{"version": "x", "items": [{"id": "1.01", "area": "1", "model": "2pl", "a": -1}]}'
    )
    result = CliRunner().invoke(simulate, ["--bank", str(broken), *FAST])
    assert result.exit_code != 0 and "Error:" in result.output and "Traceback" not in result.output
    population = tmp_path / "pop.csv"
    population.write_text("theta_1\n0.5\n", encoding="utf-8")
    result = CliRunner().invoke(
        simulate, ["--bank", str(bare_bank), *FAST, "--population", str(population)]
    )
    assert result.exit_code != 0 and "needs one column per area" in result.output


def test_grid_file_errors_name_the_design(bare_bank, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[designs.fast]\nselector = "fastest"\n', encoding="utf-8")
    result = CliRunner().invoke(simulate, ["--bank", str(bare_bank), *FAST, "--grid", str(grid)])
    assert result.exit_code != 0
    assert "design 'fast'" in result.output and 'selector: "fastest" is not one of' in result.output


def test_python_dash_m_simulations_and_nangluc_simulate():
    help_text = subprocess.run(
        [sys.executable, "-m", "nangluc.simulations", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--stop-se" in help_text and "--grid" in help_text
    from nangluc.cli import main

    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0 and "--examinees" in result.output


@pytest.mark.slow
def test_grid_on_dask_gives_the_same_numbers(bare_bank, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(
        json.dumps({"designs": {"a": {"max_items": 6}, "b": {"selector": "mfi"}}}), encoding="utf-8"
    )
    local = invoke("--bank", str(bare_bank), *FAST, "--grid", str(grid))
    on_dask = invoke(
        "--bank", str(bare_bank), "--examinees", "150", "--reference-examinees", "100",
        "--workers", "2", "--no-progress", "--grid", str(grid), "--dask",
    )  # fmt: skip
    assert on_dask.exit_code == 0, on_dask.output
    assert (
        without_timing(json.loads(local.output))["designs"]
        == without_timing(json.loads(on_dask.output))["designs"]
    )


def test_report_speaks_to_planners(tmp_path):
    """Issue #13: plain sentences in vi and en, area names, the accuracy's interval for the
    number of simulees, stop reasons in words and exposure explained."""
    target = tmp_path / "report"
    result = invoke("--examinees", "400", "--no-references", "--report", str(target))
    assert result.exit_code == 0, result.output
    text = (target / "report.md").read_text(encoding="utf-8")
    vi = text[
        text.index("## Tóm tắt cho người lập kế hoạch") : text.index("## Summary for planners")
    ]
    en = text[text.index("## Summary for planners") : text.index("\n## ", text.index("## Summary"))]
    summary = json.loads(result.output)
    accuracy = summary["level_accuracy"]
    # The share told their right level, with its 95% interval for 400 simulees (about ±3.5).
    share = f"{100 * accuracy:.1f}".replace(".", ",")
    assert f"{share}%" in vi and "khoảng tin cậy 95%" in vi and "400 người" in vi
    interval = re.search(r"between ([\d.]+)% and ([\d.]+)%", en)
    low, high = float(interval[1]) / 100, float(interval[2]) / 100
    assert low < accuracy < high and 0.05 < high - low < 0.09
    # Stop reasons in words, not codes.
    assert "đủ chắc về mức chung" in vi and "sure enough of the overall level" in en
    assert "level_probable" not in vi + en and "max_items" not in vi + en
    # Areas by name, and what exposure means.
    assert any(name in vi for name in ("Thông tin và dữ liệu", "Bảo vệ và an toàn",
                                        "Môi trường kỹ thuật số", "Tạo lập nội dung số",
                                        "Truyền thông và cộng tác"))  # fmt: skip
    assert "truyền tai" in vi and "passed around" in en
    assert "| 1 · Information and data |" in text


def test_progress_shows_a_bar_for_every_stage(bare_bank):
    """Issue #13's finding: --progress printed nothing. Each stage leaves a full bar on stderr."""
    result = CliRunner().invoke(
        simulate, ["--bank", str(bare_bank), *FAST, "--progress"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.replace("\r", "\n")
    for stage in ("simulate ", "+true-theta", "all items (reference)"):
        finished = [line for line in lines.splitlines() if stage in line and "100%" in line]
        assert finished, (stage, lines[-500:])
    json.loads(result.stdout)  # the summary is still clean JSON on stdout
