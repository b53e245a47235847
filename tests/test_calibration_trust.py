"""Calibrations that can be trusted (issue 15): priors, minimum responses, statuses, checks.

Each finding quoted in the issue has a regression test here: the small-sample
wild parameters, exit codes and the draft status, the reversed-key message,
the warning when the majority sets a scale's direction, the bound check on c,
up-front model checks, the description of calibrated banks and version ids.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nangluc.calibration import Priors, ResponseData, calibrate_bank, kernels, mml
from nangluc.calibration.cli import calibrate
from nangluc.calibration.run import default_version
from nangluc.calibration.synthetic import bank_document, simulate_sparse, write_csv
from nangluc.engine.bank import ItemBank
from nangluc.items import bank_from_dict, load_bank


def invoke(*args):
    return CliRunner().invoke(calibrate, [str(a) for a in args])


@pytest.fixture(scope="module")
def shipped():
    return load_bank()


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory, shipped):
    """The issue's case: 3,000 synthetic respondents x 25 items drawn from the shipped bank."""
    root = tmp_path_factory.mktemp("small")
    bank = shipped.item_bank
    sim = simulate_sparse(bank, 3000, 25, np.random.default_rng(1))
    path = root / "responses.csv"
    write_csv(path, bank, sim)
    return root, path


def test_small_sample_gives_plausible_parameters_with_the_default_priors(small_sample, shipped):
    root, responses = small_sample
    out = root / "default.json"
    result = invoke(
        responses,
        "--model",
        "auto",
        "--bank",
        "items/data/bank.json",
        "--out",
        out,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "converged" in result.output and "NOT converged" not in result.output
    doc = load_bank(out)
    assert doc.status == "calibrated"
    truth = {item.id: item for item in shipped.items}
    a = np.array([item.a for item in doc.items])
    a_true = np.array([truth[item.id].a for item in doc.items])
    # the issue saw four 3PL items at a = 4.1-8.1 (true 0.94-1.62)
    assert a.max() < 4.0
    assert np.sqrt(np.mean((a - a_true) ** 2)) < 0.35


def test_small_sample_without_priors_is_a_draft_with_its_problems_listed(small_sample):
    root, responses = small_sample
    out = root / "none.json"
    result = invoke(
        responses,
        "--bank",
        "items/data/bank.json",
        "--out",
        out,
        "--no-progress",
        "--prior",
        "none",
        "--max-iterations",
        "60",
        "--tolerance",
        "1e-5",
    )
    assert result.exit_code == 1, result.output  # error-level findings
    assert "status draft" in result.output
    doc = load_bank(out)
    assert doc.status == "draft"
    assert "Draft" in doc.metadata["description"]["en"]
    assert "Bản nháp" in doc.metadata["description"]["vi"]
    found = doc.metadata["calibration"]["diagnostics"]
    assert any(d["code"] == "not_converged" and d["severity"] == "error" for d in found)
    # whatever maximum likelihood did with these data, nothing wild is written as operational
    for item in doc.items:
        if item.operational and item.se is not None and item.status_reason is None:
            assert item.a <= 4.0 and max(abs(t) for t in item.thresholds) <= 6.0


@pytest.mark.parametrize("per_person", [25, 173])
@pytest.mark.parametrize("min_responses", [200, 1])
def test_150_respondents_never_put_a_wild_item_live(shipped, per_person, min_responses):
    bank = shipped.item_bank
    sim = simulate_sparse(bank, 150, per_person, np.random.default_rng(3))
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], sim.response, bank=shipped
    )
    run = calibrate_bank(data, current=shipped, min_responses=min_responses)
    operational = [item for item in run.document["items"] if item["status"] == "operational"]
    assert operational
    for item in operational:
        assert item["a"] <= 4.0, item
        assert max(abs(t) for t in item.get("thresholds", [item.get("b")])) <= 6.0, item
    if min_responses == 200:  # no item has 200 responses: no new estimate goes live
        assert {row["decision"] for row in run.items} <= {"kept", "pretest"}


def test_few_responses_keep_an_item_out_of_operation_with_its_reason():
    rng = np.random.default_rng(8)
    n = 10
    ids = [f"1.1.{k:02d}" for k in range(n)]
    bank = ItemBank.from_items(
        version="few-1",
        item_ids=ids,
        areas=["1"] * n,
        models=["2pl"] * n,
        discrimination=rng.uniform(1.0, 1.8, n),
        thresholds=[[rng.uniform(-1, 1)] for _ in range(n)],
        operational=[True] * (n - 1) + [False],  # the last item is pretest
    )
    sim = simulate_sparse(bank, 3000, 6, rng)
    keep = np.isin(sim.item, [n - 2, n - 1], invert=True) | (sim.person < 120)
    names = np.array([f"p{p}" for p in range(3000)])
    current = bank_from_dict(bank_document(bank, version="few-1"))
    data = ResponseData.from_arrays(
        names[sim.person][keep], np.array(ids)[sim.item][keep], sim.response[keep], bank=current
    )
    run = calibrate_bank(data, current=current, min_responses=150)
    items = {item["id"]: item for item in run.document["items"]}
    assert run.document["status"] == "calibrated"  # handled: warnings, no errors
    # operational in the current bank: keeps its current parameters and status
    assert items[ids[-2]]["status"] == "operational"
    assert items[ids[-2]]["a"] == pytest.approx(current.item(ids[-2]).a)
    # pretest item: its estimate is written, still pretest, with the reason
    assert items[ids[-1]]["status"] == "pretest"
    assert "fewer than 150" in items[ids[-1]]["status_reason"]
    assert items[ids[0]]["status"] == "operational" and "status_reason" not in items[ids[0]]
    statuses = run.document["metadata"]["calibration"]["statuses"]
    assert statuses["kept"] == [ids[-2]] and statuses["pretest"] == [ids[-1]]


def _keyed_bank(n: int, seed: int, version: str) -> tuple[ItemBank, dict]:
    rng = np.random.default_rng(seed)
    ids = [f"1.1.{k:02d}" for k in range(n)]
    bank = ItemBank.from_items(
        version=version,
        item_ids=ids,
        areas=["1"] * n,
        models=["2pl"] * n,
        discrimination=rng.uniform(1.0, 1.8, n),
        thresholds=[[rng.uniform(-1, 1)] for _ in range(n)],
    )
    document = bank_document(bank, version=version)
    for item in document["items"]:
        item["ksa"] = "knowledge"
        item["text"] = {"vi": "Câu hỏi", "en": "Question"}
        item["options"] = [{"vi": f"Đáp án {k}"} for k in range(4)]
        item["key"] = 2
    # knowledge items with four options: auto would fit 3PL; keep these 2PL
    for item in document["items"]:
        item["ksa"] = "skill"
    return bank, document


def test_a_reversed_key_is_an_error_that_suggests_correcting_the_key():
    bank, document = _keyed_bank(12, 4, "keyed-1")
    current = bank_from_dict(document)
    rng = np.random.default_rng(4)
    sim = simulate_sparse(bank, 4000, 8, rng)
    response = sim.response.copy()
    response[sim.item == 3] = 1 - response[sim.item == 3]  # item 3 scored against its key
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], response, bank=current
    )
    run = calibrate_bank(data, current=current, model="2pl")
    reversed_ = [d for d in run.diagnostics if d.code == "reversed"]
    assert [d.item_id for d in reversed_] == ["1.1.03"]
    assert reversed_[0].severity == "error"
    assert "key is probably wrong" in reversed_[0].message
    assert "the key is now option 2" in reversed_[0].message
    assert run.document["status"] == "draft"
    item = next(i for i in run.document["items"] if i["id"] == "1.1.03")
    assert item["status"] == "pretest" and "reversed key" in item["status_reason"]


def test_when_the_majority_is_reversed_the_scale_flips_and_says_so():
    rng = np.random.default_rng(6)
    n = 9
    bank = ItemBank.from_items(
        version="flip-1",
        item_ids=[f"1.1.{k:02d}" for k in range(n)],
        areas=["1"] * n,
        models=["2pl"] * n,
        discrimination=rng.uniform(1.0, 1.8, n),
        thresholds=[[rng.uniform(-1, 1)] for _ in range(n)],
    )
    sim = simulate_sparse(bank, 4000, 9, rng)
    response = sim.response.copy()
    flipped = sim.item < 6  # six of nine items keyed in reverse
    response[flipped] = 1 - response[flipped]
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], response
    )
    # without a bank: the majority decides; the correctly keyed minority looks reversed
    run = calibrate_bank(data, model="2pl")
    flagged = sorted(d.item_id for d in run.diagnostics if d.code == "reversed")
    assert flagged == ["1.1.06", "1.1.07", "1.1.08"]
    warning = next(d for d in run.diagnostics if d.code == "scale_direction")
    assert warning.severity == "warning" and "majority" in warning.message
    # with the live bank: the flip itself is found
    current = bank_from_dict(bank_document(bank, version="flip-1"))
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], response, bank=current
    )
    run = calibrate_bank(data, current=current, model="2pl")
    flip = next(d for d in run.diagnostics if d.code == "scale_reversed")
    assert flip.severity == "error" and "opposite direction" in flip.message
    assert run.document["status"] == "draft"


def test_bound_check_compares_each_parameter_with_its_own_bound():
    # the c bound check used to compare gamma (bound 7) with the intercept bound (40)
    at_c = np.array([1.2, 0.5, -mml.GAMMA_BOUND])
    assert mml.at_bound(kernels.THREEPL, at_c) == ["c"]
    assert mml.at_bound(kernels.THREEPL, np.array([mml.SLOPE_BOUND, 0.5, 0.0])) == ["a"]
    assert mml.at_bound(kernels.GRADED, np.array([1.0, mml.INTERCEPT_BOUND, 0.0])) == ["thresholds"]
    assert mml.at_bound(kernels.THREEPL, np.array([1.2, 0.5, -1.0])) == []


def test_model_mismatch_is_refused_before_fitting(small_sample, monkeypatch, tmp_path):
    _, responses = small_sample

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking the model")

    monkeypatch.setattr(mml, "fit_scale", no_fit)
    out = tmp_path / "grm.json"
    result = invoke(
        responses, "--model", "grm", "--bank", "items/data/bank.json", "--out", out, "--no-progress"
    )
    assert result.exit_code == 2, result.output
    assert "nothing was fitted" in result.output and "key is only for" in result.output
    assert not out.exists()


def test_calibrated_bank_says_what_it_is(tmp_path):
    rng = np.random.default_rng(2)
    n = 8
    bank = ItemBank.from_items(
        version="desc-1",
        item_ids=[f"1.1.{k:02d}" for k in range(n)],
        areas=["1"] * n,
        models=["2pl"] * n,
        discrimination=rng.uniform(1.0, 1.8, n),
        thresholds=[[rng.uniform(-1, 1)] for _ in range(n)],
    )
    document = bank_document(bank, version="desc-1", status="provisional")
    document["metadata"] = {
        "description": {
            "vi": "tham số tạm thời, chưa hiệu chỉnh",
            "en": "provisional, not yet calibrated",
        }
    }
    current = bank_from_dict(document)
    sim = simulate_sparse(bank, 2000, 8, rng)
    data = ResponseData.from_arrays(
        [f"p{p}" for p in sim.person], np.array(bank.item_ids)[sim.item], sim.response, bank=current
    )
    run = calibrate_bank(data, current=current)
    meta = run.document["metadata"]
    assert run.document["status"] == "calibrated"
    assert "not yet calibrated" not in json.dumps(meta["description"])
    assert "calibrated from the responses of 2,000 people" in meta["description"]["en"]
    assert "hiệu chỉnh từ câu trả lời của 2.000 người" in meta["description"]["vi"]
    assert "desc-1" in meta["description"]["en"]
    assert meta["parameter_source"].startswith("calibrated: marginal maximum a posteriori")
    assert meta["calibration"]["priors"]["slope"]["distribution"] == "lognormal"
    assert run.fit.log_posterior == pytest.approx(run.fit.loglik + run.fit.log_prior)
    assert run.fit.log_prior < 0
    plain = calibrate_bank(data, current=current, priors=Priors.none())
    assert plain.fit.log_prior == 0.0
    assert "maximum likelihood" in plain.document["metadata"]["parameter_source"]


def test_version_ids_never_collide():
    import datetime as dt

    moment = dt.datetime(2026, 12, 1, 8, 0, 0, tzinfo=dt.UTC)
    ids = {default_version("2024.10-p1", moment) for _ in range(3)}
    assert len(ids) == 3  # three calibrations in the same second
    long = default_version("x" * 64, moment)
    assert len(long) <= 64
    for version in ids | {long}:
        bank_from_dict({"version": version, "items": [_bare_item()]})  # a valid id


def _bare_item() -> dict:
    return {"id": "1.1.01", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tolerance", "0"], "--tolerance"),
        (["--max-iterations", "1"], "--max-iterations"),
        (["--prior", "flat"], "--prior"),
        (["--min-responses", "0"], "--min-responses"),
    ],
)
def test_bad_em_options_exit_2(small_sample, tmp_path, options, message):
    _, responses = small_sample
    out = tmp_path / "o.json"
    result = invoke(responses, "--out", out, *options)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()
