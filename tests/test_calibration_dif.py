"""DIF (issue 15): planted DIF is found, items without DIF are not flagged, the command works."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from benchmarks.dif_planted import simulate
from nangluc.calibration.cli import dif
from nangluc.calibration.dif import _mh_dichotomous, dif_analysis


@pytest.mark.slow
def test_planted_dif_is_found_and_impact_is_not_mistaken_for_it():
    planted = np.arange(0, 173, 12)  # 15 items, on a focal group with a lower mean
    document, data, groups = simulate(2000, 100, planted, 0.8, seed=3)
    result = dif_analysis(data, document, groups, reference="reference")
    planted_ids = {document.items[i].id for i in planted}
    flagged = {r.item_id for r in result.flagged}
    assert len(flagged & planted_ids) >= 0.8 * len(planted_ids)
    assert len(flagged - planted_ids) <= 0.05 * (173 - len(planted_ids))
    row = next(r for r in result.rows if r.item_id in flagged & planted_ids)
    assert row.effect < 0 and row.delta_b > 0  # harder for the focal group
    assert 0 <= row.lr_q <= 1 and row.lr_p <= row.lr_q


def test_mantel_haenszel_matches_the_textbook_on_one_stratum():
    # one stratum: alpha_MH is the odds ratio ad/bc
    x = np.array([1] * 30 + [0] * 10 + [1] * 20 + [0] * 20)
    ref = np.array([True] * 40 + [False] * 40)
    delta, chi2, p, ets = _mh_dichotomous(x, ref, np.zeros(80, dtype=int))
    assert delta == pytest.approx(-2.35 * np.log((30 * 20) / (10 * 20)))
    assert 0 < p < 0.05 and ets in ("B", "C")


def test_dif_command(tmp_path):
    planted = np.arange(0, 173, 20)
    document, data, groups = simulate(800, 25, planted, 0.8, seed=5)
    path = tmp_path / "responses.csv"
    labels = dict(zip(data.respondent_ids, groups, strict=True))
    with path.open("w", encoding="utf-8") as f:
        f.write("respondent_id,item_id,response,age_group\n")
        for p, i, r in zip(data.person, data.item, data.response, strict=True):
            person = data.respondent_ids[p]
            f.write(f"{person},{data.item_ids[i]},{r},{labels[person]}\n")
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps(document.to_dict(), ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "dif.json"
    result = CliRunner().invoke(
        dif,
        [str(path), "--bank", str(bank), "--group", "age_group", "--reference", "reference"]
        + ["--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "reference reference" in result.output and "ETS classes" in result.output
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert {r["focal"] for r in rows} == {"focal"}
    missing = CliRunner().invoke(dif, [str(path), "--bank", str(bank), "--group", "ward"])
    assert missing.exit_code == 2 and "no column 'ward'" in missing.output
