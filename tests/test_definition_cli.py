"""``nangluc test validate|add|list|show|activate`` (validate in the light core)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nangluc.cli import main
from nangluc.items.definitions import SHIPPED_DIR
from nangluc.service.settings import Settings
from nangluc.service.store import Database
from service_fixtures import bank_dict, write_bank

SAFETY_TOML = """
name = "an-toan"
version = "1"
areas = ["4"]
[title]
vi = "Kiểm tra nhanh: an toàn trên mạng"
en = "Quick check: online safety"
[intended_use]
vi = "Cho chiến dịch an toàn trên mạng."
en = "For online safety campaigns."
[rules]
max_items = 5
min_items = 2
exposure = "randomesque:2"
"""


def run(*args):
    return CliRunner().invoke(main, ["test", *[str(a) for a in args]])


@pytest.mark.parametrize("name", ["citizen.toml", "an-toan-so.toml", "phieu-truoc-sau.toml"])
def test_shipped_definitions_validate(name):
    result = run("validate", SHIPPED_DIR / name)
    assert result.exit_code == 0, result.output
    assert "valid —" in result.output and "checked on 2024.10-p3" in result.output


def test_validate_names_each_bad_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        SAFETY_TOML.replace("max_items = 5", 'max_items = "ten"').replace(
            'name = "an-toan"', 'name = "An Toan"'
        ),
        encoding="utf-8",
    )
    result = run("validate", path)
    assert result.exit_code == 1
    assert 'rules.max_items: must be an integer >= 1, got "ten"' in result.output
    assert "name: must be 1-63 lower-case letters" in result.output
    assert "invalid, 2 problems" in result.output and "Traceback" not in result.output


def test_validate_checks_areas_and_items_against_the_bank(tmp_path):
    path = tmp_path / "form.json"
    path.write_text(
        json.dumps(
            {
                "name": "phieu",
                "version": "1",
                "title": {"vi": "Phiếu", "en": "Form"},
                "intended_use": {"vi": "Lớp học", "en": "Class"},
                "form": {"items": ["4.1.01", "9.9.99"]},
            }
        ),
        encoding="utf-8",
    )
    result = run("validate", path)
    assert result.exit_code == 1
    assert 'form.items[1]: item "9.9.99" is not in bank 2024.10-p3' in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "does not exist"), ("name = [", "not valid TOML"), (b"\xff\xfe", "not UTF-8")],
)
def test_unreadable_files_exit_2(tmp_path, text, message):
    path = tmp_path / "t.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text, encoding="utf-8")
    result = run("validate", path)
    assert result.exit_code == 2 and message in result.output


@pytest.fixture
def database(tmp_path, monkeypatch):
    monkeypatch.setenv("NANGLUC_GATE_SIMULEES", "500")
    url = f"sqlite:///{tmp_path / 'service.db'}"
    db = Database(
        Settings(database_url=url, bank_path=str(write_bank(tmp_path / "b.json", bank_dict())))
    )
    db.setup()  # the service's first start: svc-test-1 and the citizen test active
    db.dispose()
    return url


def test_add_list_show_activate(database, tmp_path):
    path = tmp_path / "an-toan.toml"
    path.write_text(SAFETY_TOML, encoding="utf-8")
    added = run("add", path, "--database-url", database)
    assert added.exit_code == 0, added.output
    assert "stored test an-toan version 1 as a draft" in added.output
    again = run("add", path, "--database-url", database)
    assert again.exit_code == 2 and "exists already" in again.output

    listed = run("list", "--database-url", database).output.splitlines()
    assert any(line.startswith("citizen\t2\tactive (default)") for line in listed)
    assert any(line.startswith("an-toan\t1\tdraft\tadaptive\t2-5 items") for line in listed)

    shown = run("show", "an-toan", "--database-url", database, "--json")
    assert json.loads(shown.output)["rules"]["max_items"] == 5
    missing = run("show", "khong-co", "--database-url", database)
    assert missing.exit_code == 2 and "khong-co" in missing.output

    activated = run(
        "activate", "an-toan", "--version", "1", "--default", "--database-url", database
    )
    assert activated.exit_code == 0, activated.output
    assert "go-live gate: passed" in activated.output and "level accuracy" in activated.output
    assert "test an-toan@1 is active; it is the city's default test" in activated.output
    listed = run("list", "--database-url", database).output
    assert "an-toan\t1\tactive (default)" in listed and "accuracy 0." in listed

    worse = tmp_path / "worse.toml"
    worse.write_text(
        SAFETY_TOML.replace('version = "1"', 'version = "2"')
        .replace("max_items = 5", "max_items = 1")
        .replace("min_items = 2", "min_items = 1"),
        encoding="utf-8",
    )
    assert run("add", worse, "--database-url", database).exit_code == 0
    refused = run("activate", "an-toan", "--version", "2", "--database-url", database)
    assert refused.exit_code == 1 and "REFUSED" in refused.output
    assert "simulated level accuracy drops" in refused.output
    no_reason = run("activate", "an-toan", "--version", "2", "--force", "--database-url", database)
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output


def _simulate(*args):
    from nangluc.simulations.cli import simulate

    return CliRunner().invoke(
        simulate, ["--examinees", "300", "--no-references", "--workers", "1", *map(str, args)]
    )


def test_simulate_a_fixed_form_with_a_length_override():
    result = _simulate("--test", SHIPPED_DIR / "phieu-truoc-sau.toml", "--max-items", "6")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["mean_items"] == 6 and summary["test"]["kind"] == "form"
    assert summary["bank"]["areas"] == ["4", "5"] and summary["test"]["overrides"] == {
        "max_items": 6
    }


def test_simulate_refuses_what_a_definition_cannot_take(tmp_path):
    form = _simulate("--test", SHIPPED_DIR / "phieu-truoc-sau.toml", "--selector", "mfi")
    assert form.exit_code == 1
    assert "selector: a fixed form gives its items in order" in form.output
    pinned = tmp_path / "pinned.toml"
    pinned.write_text(SAFETY_TOML.replace('areas = ["4"]', 'bank = "2030.1"'), encoding="utf-8")
    result = _simulate("--test", pinned)
    assert result.exit_code == 1 and "defined on bank 2030.1; give that bank with --bank" in (
        result.output
    )
    bad = tmp_path / "bad.toml"
    bad.write_text(SAFETY_TOML.replace("max_items = 5", "max_items = 0"), encoding="utf-8")
    result = _simulate("--test", bad)
    assert result.exit_code == 1 and "rules.max_items: must be an integer >= 1, got 0" in (
        result.output
    )
