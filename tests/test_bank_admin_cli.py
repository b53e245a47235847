"""``nangluc bank add|versions|activate|activations`` on a service database (issue 15)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nangluc.items.cli import bank
from nangluc.service.settings import Settings
from nangluc.service.store import Database
from service_fixtures import bank_dict, write_bank


@pytest.fixture
def database(tmp_path, monkeypatch):
    monkeypatch.setenv("NANGLUC_GATE_SIMULEES", "1000")
    url = f"sqlite:///{tmp_path / 'service.db'}"
    db = Database(
        Settings(database_url=url, bank_path=str(write_bank(tmp_path / "b.json", bank_dict())))
    )
    db.setup()  # the service's first start: svc-test-1 active
    db.dispose()
    return url


def run(*args):
    return CliRunner().invoke(bank, [str(a) for a in args])


def test_activation_from_the_command_line_goes_through_the_gate(database, tmp_path):
    draft = bank_dict("svc-test-cal1")
    draft["status"] = "draft"
    draft["metadata"] = {
        "calibration": {
            "diagnostics": [
                {
                    "item_id": "1.t00",
                    "code": "reversed",
                    "severity": "error",
                    "message": "runs against its area",
                }
            ]
        }
    }
    path = write_bank(tmp_path / "draft.json", draft)
    result = run("add", path, "--database-url", database)
    assert result.exit_code == 0, result.output
    assert "stored bank svc-test-cal1 as a draft" in result.output
    assert "svc-test-cal1\tdraft\tdraft" in run("versions", "--database-url", database).output

    refused = run("activate", "svc-test-cal1", "--database-url", database)
    assert refused.exit_code == 1, refused.output
    assert "REFUSED" in refused.output and "runs against its area" in refused.output
    assert "level accuracy" in refused.output

    no_reason = run("activate", "svc-test-cal1", "--database-url", database, "--force")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output

    missing = run("activate", "nope-1", "--database-url", database)
    assert (
        missing.exit_code == 2
        and "does not exist" in missing.output
        and "Traceback" not in missing.output
    )

    forced = run(
        "activate",
        "svc-test-cal1",
        "--database-url",
        database,
        "--force",
        "--reason",
        "pilot in Hải Châu",
    )
    assert forced.exit_code == 0, forced.output
    assert "overridden: pilot in Hải Châu" in forced.output

    log = run("activations", "--database-url", database, "--json")
    entries = json.loads(log.output)
    assert [(e["outcome"], e["forced"]) for e in entries] == [
        ("activated", True),
        ("refused", False),
    ]
    assert entries[0]["actor"].startswith("cli") and entries[0]["reason"] == "pilot in Hải Châu"
    assert entries[1]["gate"]["errors"][0]["code"] == "reversed"


def test_a_bad_database_url_is_a_clear_error(tmp_path):
    result = run("versions", "--database-url", "mysql://x/y")
    assert result.exit_code == 2 and "unsupported database" in result.output
