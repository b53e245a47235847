"""The second, small framework shipped as a worked example (issue #14, §1): file and simulation.

The service, page and reports run it in ``test_framework_example_service.py``.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata

import pytest
from click.testing import CliRunner

from nangluc import items
from nangluc.engine import DEFAULT_SCALE
from nangluc.items.provisional import provisional_parameters
from nangluc.items.spreadsheet import bank_to_csv, import_csv
from nangluc.simulations.cli import simulate

PATH = items.HOUSEHOLD_SAFETY_BANK_PATH


@pytest.fixture(scope="module")
def doc():
    return items.load_bank(PATH)


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_example_is_a_small_framework_of_its_own(doc):
    fw = doc.framework
    assert [a.code for a in fw.areas] == ["1", "2", "3"]
    assert doc.area_codes == ("1", "2", "3")
    assert 30 <= len(doc) <= 45
    assert [(lv.code, lv.lower, lv.upper) for lv in fw.levels] == [
        (1, 0, 30),
        (2, 30, 55),
        (3, 55, 80),
        (4, 80, 100),
    ]
    scale = doc.item_bank.scale
    assert scale != DEFAULT_SCALE
    assert scale.rule == "weighted"
    assert dict(scale.weights) == {"1": 1.0, "2": 2.0, "3": 1.0}
    assert doc.hash_matches
    assert doc.status == "provisional"


def test_example_text_is_bilingual_nfc_and_accented(doc):
    text = PATH.read_text(encoding="utf-8")
    assert all(unicodedata.is_normalized("NFC", s) for s in _strings(json.loads(text)))
    for item in doc.items:
        assert item.text["vi"] and item.text["en"], item.id
        assert all(o["vi"] and o["en"] for o in item.options), item.id
        # Vietnamese wording carries its diacritics (not ASCII-only).
        assert any(ord(ch) > 127 for ch in item.text["vi"]), item.id
    for level in doc.framework.levels:
        assert level.name["vi"] and level.name["en"]


def test_example_parameters_follow_the_documented_seeded_rule(doc):
    source = doc.metadata["parameter_source"]
    assert source["provisional"] is True
    assert source["location_by_level"] == {"1": -1.5, "2": -0.5, "3": 0.5, "4": 1.5}
    levels = [lv.code for lv in doc.framework.levels]
    raw = json.loads(PATH.read_text(encoding="utf-8"))
    for item in raw["items"]:
        expected = provisional_parameters(item, source["seed"], levels)
        assert {k: item[k] for k in expected} == expected, item["id"]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("household")
    out = directory / "sim.json"
    result = CliRunner().invoke(
        simulate,
        ["--bank", str(PATH), "--examinees", "300", "--seed", "5", "--workers", "1",
         "--no-progress", "--reference-examinees", "100", "--json", str(out),
         "--report", str(directory / "report")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text(encoding="utf-8"))
    summary["report.md"] = (directory / "report" / "report.md").read_text(encoding="utf-8")
    return summary


def test_simulate_reports_the_examples_own_levels(simulated):
    assert simulated["framework"]["levels"] == [
        {
            "code": 1,
            "name": {"vi": "Cần hỗ trợ", "en": "Needs support"},
            "lower": 0.0,
            "upper": 30.0,
        },
        {"code": 2, "name": {"vi": "Nắm cơ bản", "en": "Aware"}, "lower": 30.0, "upper": 55.0},
        {"code": 3, "name": {"vi": "Vững vàng", "en": "Confident"}, "lower": 55.0, "upper": 80.0},
        {"code": 4, "name": {"vi": "Làm chủ", "en": "Leading"}, "lower": 80.0, "upper": 100.0},
    ]
    assert simulated["framework"]["overall"]["rule"] == "weighted"
    confusion = simulated["level_confusion"]
    assert confusion["codes"] == [1, 2, 3, 4]
    assert confusion["levels"] == ["Cần hỗ trợ", "Nắm cơ bản", "Vững vàng", "Làm chủ"]
    assert len(confusion["counts"]) == 4 and all(len(row) == 4 for row in confusion["counts"])
    assert sum(map(sum, confusion["counts"])) == 300
    assert set(simulated["area_items"]) == {"1", "2", "3"}
    # A short adaptive test places most simulees in their true level (4 bands).
    assert 0.6 < simulated["level_accuracy"] <= 1.0
    assert len(simulated["true_level_shares"]) == 4


def test_a_full_sheet_import_gives_provisional_parameters_by_the_examples_levels(doc):
    rows = list(csv.DictReader(io.StringIO(bank_to_csv(doc).lstrip("\ufeff"))))
    for row in rows:  # no parameters: the provisional rule gives them
        for column in ("model", "a", "b", "c", "thresholds"):
            row[column] = ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    new, _ = import_csv(out.getvalue(), doc, version="household-2026.12-p2", mode="full")
    assert new.metadata["parameter_source"]["location_by_level"] == {
        "1": -1.5,
        "2": -0.5,
        "3": 0.5,
        "4": 1.5,
    }
    level_one = next(i for i in new.items if i.level == 1 and i.model == "3pl")
    assert -2.0 <= level_one.b <= -1.0  # around -1.5, within the rule's jitter


def test_the_simulation_report_names_the_examples_levels_and_rule(simulated):
    report = simulated["report.md"]
    assert (
        "levels 1 Cần hỗ trợ (Needs support) < 30, 2 Nắm cơ bản (Aware) 30–55, "
        "3 Vững vàng (Confident) 55–80, 4 Làm chủ (Leading) ≥ 80" in report
    )
    assert "weighted mean of the area domain scores: area 1 × 1, area 2 × 2, area 3 × 1" in report
    assert "(Cần hỗ trợ, Nắm cơ bản, Vững vàng hay Làm chủ)" in report
    assert "(Needs support, Aware, Confident or Leading)" in report
    assert "Nâng cao" not in report and "Bắt đầu" not in report


def test_bank_info_shows_the_examples_levels_and_overall_rule():
    from nangluc.items.cli import bank

    result = CliRunner().invoke(bank, ["info", str(PATH)])
    assert result.exit_code == 0, result.output
    assert (
        "levels:   1 Cần hỗ trợ [0, 30), 2 Nắm cơ bản [30, 55), 3 Vững vàng [55, 80), "
        "4 Làm chủ [80, 100]" in result.output
    )
    assert "overall:  weighted (area 1 x 1, area 2 x 2, area 3 x 1)" in result.output
    shipped = CliRunner().invoke(bank, ["info", str(items.DEFAULT_BANK_PATH)])
    assert "5 Nâng cao [80, 100]" in shipped.output
    assert "overall:  mean of the areas" in shipped.output
