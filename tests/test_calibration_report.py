"""``nangluc calibrate --report DIR [--group COLUMN]``: the researcher's report (issue 15)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from benchmarks.dif_planted import simulate
from nangluc.calibration.cli import calibrate


def test_report_says_what_can_go_live_with_plots_fit_dif_and_drift(tmp_path):
    planted = np.arange(0, 173, 25)
    document, data, groups = simulate(900, 30, planted, 0.8, seed=9)
    labels = dict(zip(data.respondent_ids, groups, strict=True))
    responses = tmp_path / "responses.csv"
    with responses.open("w", encoding="utf-8") as f:
        f.write("respondent_id,item_id,response,age_group\n")
        for p, i, r in zip(data.person, data.item, data.response, strict=True):
            person = data.respondent_ids[p]
            f.write(f"{person},{data.item_ids[i]},{r},{labels[person]}\n")
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps(document.to_dict(), ensure_ascii=False), encoding="utf-8")
    out, report = tmp_path / "new.json", tmp_path / "report"
    result = CliRunner().invoke(
        calibrate,
        [str(responses), "--bank", str(bank), "--out", str(out), "--no-progress"]
        + ["--min-responses", "160", "--report", str(report), "--group", "age_group"],
    )
    assert result.exit_code == 0, result.output
    text = (report / "report.md").read_text(encoding="utf-8")
    assert text.startswith("# Calibration report: bank ")
    assert "## Summary" in text and "may go through the go-live gate" in text
    assert "keep their current parameters" in text  # items under 160 responses
    assert "## Linking to the live scale" in text and "| 1 | stocking-lord |" in text
    assert "## Differential item functioning" in text and "Reference group `" in text
    assert "drift Δb (z)" in text
    assert (report / "information.png").stat().st_size > 1000
    assert any(p.name.startswith("icc_") for p in report.iterdir())
    for name in [p.name for p in report.glob("*.png")]:
        assert f"]({name})" in text


def test_report_options_are_checked_before_anything_is_written(tmp_path, monkeypatch):
    responses = tmp_path / "r.csv"
    responses.write_text("respondent_id,item_id,response\np1,1.1.01,1\n", encoding="utf-8")
    out = tmp_path / "o.json"
    result = CliRunner().invoke(calibrate, [str(responses), "--out", str(out), "--group", "ward"])
    assert result.exit_code == 2 and "--report" in result.output
    import nangluc.extras

    monkeypatch.setattr(
        nangluc.extras, "missing_modules", lambda extra, modules=None: ["matplotlib"]
    )
    result = CliRunner().invoke(
        calibrate, [str(responses), "--out", str(out), "--report", str(tmp_path / "rep")]
    )
    assert result.exit_code == 2
    assert "pip install 'nangluc[calibration]'" in result.output
    assert not out.exists()
