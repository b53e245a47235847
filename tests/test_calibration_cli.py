"""``nangluc calibrate`` (calibration.cli): the command-line contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nangluc.calibration.cli import calibrate
from nangluc.calibration.synthetic import bank_document, simulate_sparse, write_responses_csv
from nangluc.engine.bank import ItemBank
from nangluc.items import load_bank


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cal")
    rng = np.random.default_rng(21)
    n = 16
    models = ["2pl", "grm"] * (n // 2)
    bank = ItemBank.from_items(
        version="live-1",
        item_ids=[f"{1 + k % 2}.1.{k:02d}" for k in range(n)],
        areas=[str(1 + k % 2) for k in range(n)],
        models=models,
        discrimination=rng.uniform(0.9, 1.8, n),
        thresholds=[[rng.uniform(-1, 1)] if m == "2pl" else [-1.0, 0.2, 1.1] for m in models],
        operational=[k >= 2 for k in range(n)],
    )
    bank_path = root / "live.json"
    bank_path.write_text(json.dumps(bank_document(bank, version="live-1")), encoding="utf-8")
    sim = simulate_sparse(bank, 3000, 8, rng)
    csv_path = root / "responses.csv"
    write_responses_csv(
        csv_path,
        np.array([f"p{p}" for p in sim.person]),
        np.array(bank.item_ids)[sim.item],
        sim.response,
    )
    return root, bank_path, csv_path


def invoke(*args):
    return CliRunner().invoke(calibrate, [str(a) for a in args])


def test_calibrate_writes_a_linked_bank(files):
    root, bank_path, csv_path = files
    out = root / "new.json"
    result = invoke(csv_path, "--model", "auto", "--bank", bank_path, "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "linking area 1" in result.output and "A =" in result.output
    doc = load_bank(out)
    assert doc.parent == "live-1" and doc.status == "calibrated"
    assert all(item.se is not None and item.se["a"] > 0 for item in doc.items)
    meta = doc.metadata["calibration"]
    assert meta["fit"]["converged"] and meta["respondents"] == 3000
    assert set(meta["latent"]) == {"1", "2"}


def test_calibrate_without_bank_and_with_progress(files):
    root, _, csv_path = files
    out = root / "bare.json"
    result = invoke(csv_path, "--out", out, "--progress", "--version", "bare-1")
    assert result.exit_code == 0, result.output
    assert "E-steps" in result.output  # progress bars (stderr is mixed into output here)
    doc = load_bank(out)
    assert doc.version == "bare-1" and doc.parent is None
    assert {item.model for item in doc.items} == {"2pl", "grm"}


def test_online_calibration_command(files):
    root, bank_path, csv_path = files
    out = root / "online.json"
    result = invoke(csv_path, "--bank", bank_path, "--online", "--out", out, "--no-progress")
    assert result.exit_code == 0, result.output
    doc = load_bank(out)
    live = load_bank(bank_path)
    changed = [item.id for item in doc.items if item.a != live.item(item.id).a]
    assert sorted(changed) == ["1.1.00", "2.1.01"]  # only the pretest items
    assert "fixed items" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("respondent_id,item_id,response\n", "no responses"),
        ('{"not": "csv"}\n', "missing column"),
        ("respondent_id,item_id,response\np1,9.9.99,1\np2,zz,0\n", "9.9.99"),
        ("respondent_id,item_id,response\np1,1.1.00,7\n", "line 2"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(files, tmp_path, content, message):
    _, bank_path, _ = files
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "out.json"
    out.write_text("previous content", encoding="utf-8")
    result = invoke(bad, "--bank", bank_path, "--out", out)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert out.read_text(encoding="utf-8") == "previous content"


def test_bad_options(files, tmp_path):
    _, bank_path, csv_path = files
    out = tmp_path / "o.json"
    result = invoke(csv_path, "--model", "2pl", "--out", out)
    assert result.exit_code != 0 and "dichotomous items only" in result.output
    result = invoke(csv_path, "--online", "--out", out)
    assert result.exit_code != 0 and "--bank" in result.output
    result = invoke(csv_path, "--bank", tmp_path / "missing.json", "--out", out)
    assert result.exit_code != 0 and "not found" in result.output
    result = invoke(csv_path, "--bank", bank_path, "--anchor", "9.9.99", "--out", out)
    assert result.exit_code != 0 and "9.9.99" in result.output
    assert not out.exists()
