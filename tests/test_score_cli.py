"""``nangluc score``: paper forms scored in bulk (issue #14, section 3).

Long files (the calibration input and the service's export) and wide files
(one row per person, option letters); each bad row named by its line;
nothing written unless every row is good.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from nangluc.cli import main
from nangluc.engine import CITIZEN_TEST, CITIZEN_TEST_V1, score_responses
from nangluc.items import DEFAULT_BANK_PATH, load_bank

SHIPPED = load_bank()
ITEMS = SHIPPED.items[:12]


def _run(*args: str):
    return CliRunner().invoke(main, ["score", *args])


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


#: Two people's answers as chosen options (0-based).
OPTIONS = {
    "an": {r.id: (r.key if r.key is not None else 3) for r in ITEMS[:8]},
    "binh": {r.id: k % len(r.options) for k, r in enumerate(ITEMS[2:])},
}


def _long(column: str) -> str:
    lines = [f"respondent_id,item_id,{column},ward"]
    for person, answers in OPTIONS.items():
        for item_id, option in answers.items():
            value = option if column == "option" else SHIPPED.item(item_id).score_option(option)
            lines.append(f"{person},{item_id},{value},Hải Châu")
    return "\n".join(lines) + "\n"


def _wide() -> str:
    ids = [r.id for r in ITEMS]
    lines = ["respondent_id," + ",".join(ids)]
    for person, answers in OPTIONS.items():
        cells = [
            chr(ord("a" if k % 2 else "A") + answers[i]) if i in answers else ""
            for k, i in enumerate(ids)
        ]
        lines.append(person + "," + ",".join(cells))
    return "\n".join(lines) + "\n"


def test_each_respondent_is_scored_as_the_engine_scores_the_pattern(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    done = _run(str(_write(tmp_path / "long.csv", _long("option"))), "--out", str(out))
    assert done.exit_code == 0, done.output
    rows = _rows(out.read_text(encoding="utf-8"))
    assert [r["respondent_id"] for r in rows] == ["an", "binh"]
    for row in rows:
        answers = OPTIONS[row["respondent_id"]]
        scored = {i: SHIPPED.item(i).score_option(o) for i, o in answers.items()}
        result = score_responses(SHIPPED.item_bank, scored, config=CITIZEN_TEST)
        assert float(row["overall_score"]) == pytest.approx(result.overall.score, abs=1e-4)
        assert float(row["overall_low"]) == pytest.approx(result.overall.interval[0], abs=1e-4)
        assert float(row["overall_high"]) == pytest.approx(result.overall.interval[1], abs=1e-4)
        assert int(row["overall_level"]) == result.overall.level
        assert row["overall_level_name"] == result.overall.level_name
        assert float(row["overall_probability"]) == pytest.approx(
            result.overall.probability, abs=1e-4
        )
        assert int(row["answered"]) == len(answers)
        for area in result.areas:
            assert float(row[f"area_{area.area}_score"]) == pytest.approx(area.score, abs=1e-4)
            assert int(row[f"area_{area.area}_answered"]) == area.answered
        assert row["bank_version"] == SHIPPED.version and row["test"] == CITIZEN_TEST.name


def test_long_scored_categories_long_options_and_wide_letters_agree(tmp_path: Path) -> None:
    outputs = []
    for name, text in (
        ("categories", _long("response")),
        ("options", _long("option")),
        ("wide", _wide()),
    ):
        done = _run(str(_write(tmp_path / f"{name}.csv", text)))
        assert done.exit_code == 0, (name, done.output)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]


def test_the_test_and_language_are_chosen(tmp_path: Path) -> None:
    source = str(_write(tmp_path / "long.csv", _long("option")))
    english = _rows(_run(source, "--language", "en", "--test", CITIZEN_TEST_V1.name).stdout)
    assert {r["test"] for r in english} == {CITIZEN_TEST_V1.name}
    assert english[0]["overall_level_name"] in (
        "Beginning",
        "Basic",
        "Intermediate",
        "High",
        "Advanced",
    )


def test_bad_rows_are_each_named_and_nothing_is_written(tmp_path: Path) -> None:
    first, second = ITEMS[0].id, ITEMS[1].id
    text = "\n".join(
        [
            "respondent_id,item_id,response",
            f"an,{first},1",
            "an,9.9.99,1",
            f",{second},1",
            f"binh,{first},x",
            f"binh,{second},7",
            f"an,{first},0",
            f"chi,{second}",
            "",
        ]
    )
    out = _write(tmp_path / "scores.csv", "the old scores\n")
    done = _run(str(_write(tmp_path / "bad.csv", text)), "--out", str(out))
    assert done.exit_code == 1
    said = done.stderr
    assert "line 3: item '9.9.99' is not an item of bank" in said
    assert "line 4: empty respondent_id" in said
    assert "line 5: response: 'x' is not a whole number" in said
    assert f"line 6: item {second}: response 7 is out of range (expected 0..1)" in said
    assert f"line 7: respondent an answered item {first} again (first on line 2)" in said
    assert "line 8: 2 fields where the header has 3" in said
    assert "nothing scored, 6 problems" in said
    assert "Traceback" not in done.output
    assert out.read_text(encoding="utf-8") == "the old scores\n"  # untouched


def test_bad_wide_files_are_named_by_line_and_column(tmp_path: Path) -> None:
    ids = [r.id for r in ITEMS[:3]]
    unknown = _write(tmp_path / "unknown.csv", f"respondent_id,{ids[0]},X.9\nan,A,B\n")
    done = _run(str(unknown))
    assert done.exit_code == 1 and "column(s) that are not items of bank" in done.stderr
    assert "X.9 (column 3)" in done.stderr
    text = "\n".join(
        [
            "respondent_id," + ",".join(ids),
            "an,A,Z,",
            "binh,A,?,B",
            "an,B,B,B",
            "chi,,,",
            "",
        ]
    )
    done = _run(str(_write(tmp_path / "wide.csv", text)))
    assert done.exit_code == 1
    assert f"line 2: item {ids[1]}: option Z does not exist (expected A..D)" in done.stderr
    assert f"line 3: item {ids[1]}: '?' is not an option letter" in done.stderr
    assert "line 4: respondent an has a second row (first on line 2)" in done.stderr
    assert "line 5: respondent chi answered nothing" in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "response file not found"),
        (b"", "is empty"),
        (b"\xff\xfe\x00r\x00", "not a CSV text file"),
        (b"caf\xe9,x\n", "not UTF-8"),
        (b"person,item,response\np,1.1.01,1\n", "no respondent_id column"),
        (b"respondent_id,item_id,answer\np,1.1.01,1\n", "a response column"),
    ],
)
def test_unreadable_files_exit_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "forms.csv"
    if content is not None:
        path.write_bytes(content)
    done = _run(str(path))
    assert done.exit_code == 2
    assert message in done.stderr
    assert "Traceback" not in done.output


def test_bad_options_exit_2(tmp_path: Path) -> None:
    source = str(_write(tmp_path / "long.csv", _long("option")))
    unknown = _run(source, "--test", "no-such-test")
    assert unknown.exit_code == 2 and "--test: no test named 'no-such-test'" in unknown.stderr
    missing_bank = _run(source, "--bank", str(tmp_path / "missing.json"))
    assert missing_bank.exit_code == 2


def test_a_bank_file_is_used_for_its_items(tmp_path: Path) -> None:
    import json

    from service_fixtures import bank_dict

    version = f"forms-{uuid.uuid4().hex[:6]}"
    bank = _write(tmp_path / "bank.json", json.dumps(bank_dict(version, per_area=4)))
    source = _write(tmp_path / "long.csv", "respondent_id,item_id,option\nan,1.t00,0\nan,5.t03,3\n")
    done = _run(str(source), "--bank", str(bank))
    assert done.exit_code == 0, done.output
    (row,) = _rows(done.stdout)
    assert row["bank_version"] == version and row["answered"] == "2"
    # The shipped bank has no such items: each is named.
    shipped = _run(str(source), "--bank", str(DEFAULT_BANK_PATH))
    assert (
        shipped.exit_code == 1 and "line 2: item '1.t00' is not an item of bank" in shipped.stderr
    )


def test_cells_that_look_like_formulas_are_escaped(tmp_path: Path) -> None:
    item = ITEMS[0]
    source = _write(
        tmp_path / "long.csv", f"respondent_id,item_id,option\n=HYPERLINK(1),{item.id},0\n"
    )
    done = _run(str(source))
    assert done.exit_code == 0, done.output
    assert _rows(done.stdout)[0]["respondent_id"] == "'=HYPERLINK(1)"


def test_a_shipped_one_area_test_scores_its_area_and_refuses_others(tmp_path: Path) -> None:
    area_4 = [r.id for r in SHIPPED.items if r.area == "4"][:3]
    area_1 = ITEMS[0].id
    source = _write(
        tmp_path / "safety.csv",
        "respondent_id,item_id,option\n" + "".join(f"an,{i},0\n" for i in area_4),
    )
    done = _run(str(source), "--test", "an-toan-so")
    assert done.exit_code == 0, done.output
    (row,) = _rows(done.stdout)
    assert row["test"] == "an-toan-so@1"
    assert [c for c in row if c.endswith("_score")] == ["overall_score", "area_4_score"]
    # The same answers, scored as the engine scores that test's area.
    from nangluc.items.definitions import shipped_definitions

    definition = shipped_definitions()["an-toan-so@1"]
    bank, config = definition.build(
        SHIPPED.item_bank, overrides={"exposure": "none"}, check_bank=False
    )
    scored = {i: SHIPPED.item(i).score_option(0) for i in area_4}
    result = score_responses(bank, scored, config=config)
    assert float(row["overall_score"]) == pytest.approx(result.overall.score, abs=1e-4)
    outside = _write(tmp_path / "outside.csv", f"respondent_id,item_id,option\nan,{area_1},0\n")
    refused = _run(str(outside), "--test", "an-toan-so")
    assert refused.exit_code == 1
    assert f"line 2: item '{area_1}' is not an item of test an-toan-so@1" in refused.stderr


def test_a_fixed_form_from_a_file_takes_its_own_items_only(tmp_path: Path) -> None:
    form = [r.id for r in SHIPPED.items if r.area in ("4", "5")][:4]
    definition = tmp_path / "phieu.toml"
    definition.write_text(
        'name = "phieu-nha"\nversion = "3"\nlanguages = ["vi"]\nareas = ["4", "5"]\n'
        '[title]\nvi = "Phiếu hỏi tại nhà"\n[intended_use]\nvi = "Tổ công nghệ số hỏi tại nhà."\n'
        f"[form]\nitems = {form!r}\n".replace("'", '"'),
        encoding="utf-8",
    )
    wide = _write(
        tmp_path / "wide.csv",
        "respondent_id," + ",".join(form) + "\nan,A,B,,D\nbinh,D,,C,A\n",
    )
    done = _run(str(wide), "--test", str(definition))
    assert done.exit_code == 0, done.output
    rows = _rows(done.stdout)
    assert [r["answered"] for r in rows] == ["3", "3"]
    assert {r["test"] for r in rows} == {"phieu-nha@3"}
    off_form = next(r.id for r in SHIPPED.items if r.area == "4" and r.id not in form)
    bad = _write(tmp_path / "bad.csv", f"respondent_id,{form[0]},{off_form}\nan,A,B\n")
    refused = _run(str(bad), "--test", str(definition))
    assert refused.exit_code == 1
    assert f"{off_form} (column 3)" in refused.stderr


def test_a_bad_definition_file_exits_2_naming_the_field(tmp_path: Path) -> None:
    definition = _write(
        tmp_path / "bad.toml", 'name = "x"\nversion = "1"\n[rules]\nmax_items = "ten"\n'
    )
    source = str(_write(tmp_path / "long.csv", _long("option")))
    done = _run(source, "--test", str(definition))
    assert done.exit_code == 2
    assert "max_items" in done.stderr and "Traceback" not in done.output
