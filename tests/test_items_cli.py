"""``nangluc bank …`` through click's test runner: exit codes and messages, never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nangluc import items
from nangluc.items.cli import bank
from nangluc.items.spreadsheet import BOM, bank_to_csv


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str):
    result = runner.invoke(bank, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_validate_shipped_bank(runner):
    result = run(runner, "validate", str(items.DEFAULT_BANK_PATH))
    assert result.exit_code == 0
    assert "valid — version 2024.10-p3 (provisional), 173 items in 5 areas" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_validate_prints_every_problem(runner, tmp_path):
    d = items.load_bank().to_dict()
    d["items"][0]["a"] = -0.4
    d["items"][1]["model"] = "4pl"
    grm = next(i for i in d["items"] if i["model"] == "grm")
    grm["thresholds"] = [1.0, 0.0, 2.0]
    d["items"][3]["id"] = d["items"][2]["id"]
    d["items"][4]["area"] = "8"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    result = run(runner, "validate", str(path))
    assert result.exit_code == 1
    out = result.output
    assert (
        f"item {d['items'][0]['id']}: discrimination a must be a finite number > 0 (got -0.4)"
        in out
    )
    assert f"item {d['items'][1]['id']}: unknown model '4pl'" in out
    assert f"item {grm['id']}: thresholds must be strictly increasing (got 1, 0, 2)" in out
    assert f"item {d['items'][2]['id']}: duplicate id (also items[2])" in out
    assert f"item {d['items'][4]['id']}: area '8' is not in the framework" in out
    assert "invalid, " in out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "bank file not found"), ("{oops", "is not valid JSON"), ("", "is not valid JSON")],
)
def test_unreadable_file_exits_2(runner, tmp_path, content, message):
    path = tmp_path / "bank.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    for command in ("validate", "info"):
        result = run(runner, command, str(path))
        assert result.exit_code == 2
        assert message in result.output


def test_hand_edited_bank_gets_a_warning(runner, tmp_path):
    d = items.load_bank().to_dict()
    d["items"][0]["a"] = 1.01
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    result = run(runner, "validate", str(path))
    assert result.exit_code == 0
    assert "warning: metadata.content_hash" in result.output


def test_info(runner):
    result = run(runner, "info", str(items.DEFAULT_BANK_PATH))
    assert result.exit_code == 0
    doc = items.load_bank()
    assert f"version:  {doc.version}" in result.output
    assert "status:   provisional" in result.output
    assert "items:    173" in result.output
    for code in "12345":
        n = sum(i.area == code for i in doc.items)
        assert f"  area {code} " in result.output and f": {n} (" in result.output
    models = {m: sum(i.model == m for i in doc.items) for m in ("3pl", "grm")}
    assert f"model:    3pl {models['3pl']}, grm {models['grm']}" in result.output


def test_export_csv_to_stdout_and_file(runner, tmp_path):
    doc = items.load_bank()
    result = runner.invoke(bank, ["export", str(items.DEFAULT_BANK_PATH), "--format", "csv"])
    assert result.exit_code == 0
    assert result.stdout_bytes == bank_to_csv(doc).encode("utf-8")
    out = tmp_path / "bank.csv"
    result = run(
        runner, "export", str(items.DEFAULT_BANK_PATH), "--format", "csv", "--out", str(out)
    )
    assert result.exit_code == 0
    assert out.read_bytes().startswith(BOM.encode("utf-8"))


def test_export_json_is_the_normalised_bank(runner, tmp_path):
    result = runner.invoke(bank, ["export", str(items.DEFAULT_BANK_PATH), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.output) == items.load_bank().to_dict()
    out = tmp_path / "copy.json"
    run(runner, "export", str(items.DEFAULT_BANK_PATH), "--format", "json", "--out", str(out))
    assert items.load_bank(out).content_hash == items.load_bank().content_hash


def test_export_needs_a_known_format(runner):
    result = run(runner, "export", str(items.DEFAULT_BANK_PATH), "--format", "xlsx")
    assert result.exit_code == 2
    assert "xlsx" in result.output


def test_import_official_text_makes_a_child_version(runner, tmp_path):
    doc = items.load_bank()
    target = doc.items[0]
    csv_path = tmp_path / "official.csv"
    csv_path.write_text(
        BOM
        + "id,text_vi,text_en\r\n"
        + f'{target.id},"Tiêu chí chính thức, có dấu phẩy",Official criterion\r\n',
        encoding="utf-8",
    )
    out = tmp_path / "official.json"
    result = run(
        runner,
        "import",
        str(csv_path),
        "--base",
        str(items.DEFAULT_BANK_PATH),
        "--out",
        str(out),
        "--version",
        "2024.10-p1-vb",
    )
    assert result.exit_code == 0, result.output
    assert f"version 2024.10-p1-vb (parent {doc.version})" in result.output
    new = items.load_bank(out)
    assert new.item(target.id).text == {
        "vi": "Tiêu chí chính thức, có dấu phẩy",
        "en": "Official criterion",
    }
    assert new.item(target.id).options == target.options
    assert new.item(target.id).a == target.a


def test_import_problems_exit_1_with_rows(runner, tmp_path):
    doc = items.load_bank()
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(
        f"id,text_vi,a\r\n{doc.items[0].id},Câu hỏi?,9\r\nzzz,Câu khác?,\r\n", encoding="utf-8"
    )
    out = tmp_path / "never.json"
    result = run(
        runner,
        "import",
        str(csv_path),
        "--base",
        str(items.DEFAULT_BANK_PATH),
        "--out",
        str(out),
        "--version",
        "v9",
    )
    assert result.exit_code == 1
    assert f"row 2 (item {doc.items[0].id}): a is '9'" in result.output
    assert "row 3 (item zzz): is not in bank" in result.output
    assert not out.exists()


def test_import_missing_csv_exits_2(runner, tmp_path):
    result = run(
        runner,
        "import",
        str(tmp_path / "nope.csv"),
        "--base",
        str(items.DEFAULT_BANK_PATH),
        "--out",
        str(tmp_path / "o.json"),
        "--version",
        "v9",
    )
    assert result.exit_code == 2
    assert "CSV file not found" in result.output


def test_import_refuses_to_overwrite_a_published_version(runner, tmp_path):
    doc = items.load_bank()
    out = tmp_path / "bank.json"
    items.write_bank(items.new_version(doc, version="v2"), out)
    csv_path = tmp_path / "t.csv"
    csv_path.write_text(f"id,text_vi\r\n{doc.items[0].id},Khác hẳn?\r\n", encoding="utf-8")
    result = run(
        runner,
        "import",
        str(csv_path),
        "--base",
        str(items.DEFAULT_BANK_PATH),
        "--out",
        str(out),
        "--version",
        "v2",
    )
    assert result.exit_code == 1
    assert "published versions are immutable" in result.output
    assert items.load_bank(out).item(doc.items[0].id).text == doc.items[0].text


def test_validate_a_csv_sheet(runner, tmp_path):
    doc = items.load_bank()
    good = tmp_path / "bank.csv"
    good.write_bytes(bank_to_csv(doc).encode("utf-8"))
    result = run(runner, "validate", str(good), "--base", str(items.DEFAULT_BANK_PATH))
    assert result.exit_code == 0
    assert "valid — 173 items" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        bank_to_csv(doc).replace(f"\r\n{doc.items[0].id},1,", f"\r\n{doc.items[0].id},7,", 1),
        encoding="utf-8",
    )
    result = run(runner, "validate", str(bad), "--base", str(items.DEFAULT_BANK_PATH))
    assert result.exit_code == 1
    assert f"row 2 (item {doc.items[0].id}): area '7' is not in the framework" in result.output
