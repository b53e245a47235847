"""Settings from the environment, database URLs, and ``serve``'s errors on bad input."""

from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner

from nangluc.service.cli import serve
from nangluc.service.settings import Settings, hash_key, sqlalchemy_url


def test_plain_urls_get_our_drivers() -> None:
    assert sqlalchemy_url("sqlite:///nangluc.db") == "sqlite:///nangluc.db"
    assert sqlalchemy_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert (
        sqlalchemy_url("postgres://u:p@h:5433/db?x=1") == "postgresql+psycopg://u:p@h:5433/db?x=1"
    )
    assert sqlalchemy_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    for bad in ("", "nangluc.db", "mysql://u@h/db", "http://example.com"):
        with pytest.raises(ValueError, match="database URL|unsupported database"):
            sqlalchemy_url(bad)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///nangluc.db"
    assert settings.admin_key_hashes == ()
    assert settings.max_body_size == 64 * 1024
    assert settings.bank_path is None
    assert settings.report_min_group == 20
    assert settings.planner_key_hashes == ()
    assert (settings.report_epsilon, settings.report_period) == (1.0, "quarter")


def test_admin_keys_are_kept_only_as_hashes() -> None:
    digest = hashlib.sha256(b"second").hexdigest()
    settings = Settings.from_env(
        {
            "NANGLUC_ADMIN_KEY": "first, third",
            "NANGLUC_ADMIN_KEYS": digest.upper(),
            "DATABASE_URL": "sqlite:///x.db",
        }
    )
    assert set(settings.admin_key_hashes) == {digest, hash_key("first"), hash_key("third")}
    assert "first" not in repr(settings) and "first" not in str(settings.to_env())
    # Worker processes rebuild the same settings from the environment we hand them.
    assert Settings.from_env(settings.to_env()) == settings


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="SHA-256 hex digests"):
        Settings.from_env({"NANGLUC_ADMIN_KEYS": "not-a-digest"})
    with pytest.raises(ValueError, match="NANGLUC_MAX_BODY_SIZE='big' is not valid"):
        Settings.from_env({"NANGLUC_MAX_BODY_SIZE": "big"})
    with pytest.raises(ValueError, match="at least 1024"):
        Settings(max_body_size=10)
    with pytest.raises(ValueError, match="unsupported database"):
        Settings(database_url="oracle://x")
    with pytest.raises(ValueError, match="NANGLUC_REPORT_MIN_GROUP='few' is not valid"):
        Settings.from_env({"NANGLUC_REPORT_MIN_GROUP": "few"})
    with pytest.raises(ValueError, match="lock_timeout must be > 0"):
        Settings.from_env({"NANGLUC_DB_LOCK_TIMEOUT": "nan"})
    with pytest.raises(ValueError, match="report_min_group must be >= 1"):
        Settings.from_env({"NANGLUC_REPORT_MIN_GROUP": "0"})


def test_report_min_group_round_trips() -> None:
    settings = Settings.from_env({"NANGLUC_REPORT_MIN_GROUP": "10"})
    assert settings.report_min_group == 10
    assert Settings.from_env(settings.to_env()) == settings


def test_serve_refuses_bad_input_with_a_message(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(serve, ["--database-url", "mysql://u@h/db"])
    assert result.exit_code != 0 and "unsupported database" in result.output
    result = runner.invoke(
        serve,
        ["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--bank", str(tmp_path / "none.json")],
    )
    assert result.exit_code != 0 and "bank file not found" in result.output
    bad_bank = tmp_path / "bad.json"
    bad_bank.write_text(
        '{"items": [{"id": "1", "area": "1", "model": "2pl", "a": -1, "b": 0}]}', encoding="utf-8"
    )
    result = runner.invoke(
        serve, ["--database-url", f"sqlite:///{tmp_path / 'y.db'}", "--bank", str(bad_bank)]
    )
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "item 1: discrimination a must be a finite number > 0" in result.output
    result = runner.invoke(serve, ["--database-url", "postgresql://nobody@127.0.0.1:1/none"])
    assert result.exit_code != 0 and "cannot use the database" in result.output
    assert "Traceback" not in result.output


def test_every_field_has_an_environment_variable_and_round_trips() -> None:
    """Finding 2: settings built by hand in ``serve`` lost fields on their way to workers."""
    import dataclasses

    from nangluc.service.settings import ENVIRONMENT

    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(ENVIRONMENT) == fields
    changed = Settings(
        database_url="postgresql://u@h/db",
        admin_key_hashes=(hash_key("k"),),
        bank_path="/tmp/bank.json",
        max_body_size=2048,
        pool_size=3,
        session_threads=2,
        planner_key_hashes=(hash_key("p"),),
        report_min_group=50,
        report_epsilon=2.0,
        report_period="month",
        report_simulees=5000,
        cohort_days=30,
        wards_path="/tmp/wards.json",
        lock_timeout=2.5,
        statement_timeout=0,
        max_header_size=4096,
        header_timeout=3,
        body_timeout=4,
        gate_simulees=500,
        gate_tolerance=0.05,
        metrics=True,
        request_log=False,
        log_level="debug",
        embed_origins=("https://portal.example",),
    )
    defaults = Settings()
    for name in fields:  # every field differs from its default here
        assert getattr(changed, name) != getattr(defaults, name), name
    assert Settings.from_env(changed.to_env()) == changed


def test_serve_hands_every_environment_setting_to_the_app(tmp_path, monkeypatch) -> None:
    """``nangluc serve`` keeps what the environment says and overrides only its flags."""
    import uvicorn

    seen = {}

    def fake_run(app, **options):
        seen["settings"] = app.state.settings
        seen["options"] = options
        app.state.db.dispose()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    # serve exports the settings to its environment (for the workers): a copy here.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setenv("NANGLUC_REPORT_MIN_GROUP", "50")
    monkeypatch.setenv("NANGLUC_DB_LOCK_TIMEOUT", "2")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///ignored.db")
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(serve, ["--database-url", url])
    assert result.exit_code == 0, result.output
    settings = seen["settings"]
    assert (settings.report_min_group, settings.lock_timeout, settings.database_url) == (
        50,
        2.0,
        url,
    )
    assert seen["options"]["http"] == "nangluc.service.protocol:GuardedHttpToolsProtocol"
    assert os.environ["NANGLUC_REPORT_MIN_GROUP"] == "50"  # what workers would read


def test_planner_keys_are_kept_as_hashes_and_apart_from_admin_keys() -> None:
    settings = Settings.from_env(
        {"NANGLUC_PLANNER_KEY": "plan-1,plan-2", "NANGLUC_ADMIN_KEY": "adm"}
    )
    assert settings.planner_key_hashes == (hash_key("plan-1"), hash_key("plan-2"))
    assert settings.admin_key_hashes == (hash_key("adm"),)
    env = settings.to_env()
    assert env["NANGLUC_PLANNER_KEY"] == "" and "plan-1" not in "".join(env.values())
    with pytest.raises(ValueError, match="planner key hashes must be SHA-256"):
        Settings(planner_key_hashes=("not-a-hash",))
    for bad, words in (
        ({"report_epsilon": 0.0}, "report_epsilon"),
        ({"report_period": "year"}, "report_period"),
        ({"report_simulees": 10}, "report_simulees"),
        ({"cohort_days": 0}, "cohort_days"),
    ):
        with pytest.raises(ValueError, match=words):
            Settings(**bad)
