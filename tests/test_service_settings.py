"""Settings from the environment, database URLs, and ``serve``'s errors on bad input."""

from __future__ import annotations

import hashlib

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
    assert settings.report_min_group == 5


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
    with pytest.raises(ValueError, match="must be integers"):
        Settings.from_env({"NANGLUC_MAX_BODY_SIZE": "big"})
    with pytest.raises(ValueError, match="at least 1024"):
        Settings(max_body_size=10)
    with pytest.raises(ValueError, match="unsupported database"):
        Settings(database_url="oracle://x")
    with pytest.raises(ValueError, match="must be integers"):
        Settings.from_env({"NANGLUC_REPORT_MIN_GROUP": "few"})
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


def test_database_threads_setting_round_trips() -> None:
    assert Settings.from_env({}).database_threads is False
    threaded = Settings.from_env({"NANGLUC_DB_THREADS": "1"})
    assert threaded.database_threads is True
    assert Settings.from_env(threaded.to_env()) == threaded


def test_sessions_run_the_same_in_database_threads(tmp_path) -> None:
    # The default runs session work on the event loop; the thread-pool path
    # must give the same behaviour (a whole test, a result, a refused answer).
    from litestar.testing import TestClient

    from nangluc.service.app import create_app
    from service_fixtures import bank_dict, write_bank

    bank = write_bank(tmp_path / "bank.json", bank_dict())
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'threads.db'}",
        bank_path=str(bank),
        database_threads=True,
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            started = client.post("/api/v1/sessions", json={}).json()
            sid, item = started["session_id"], started["item"]
            wrong = client.post(
                f"/api/v1/sessions/{sid}/answers", json={"item_id": item["id"], "response": 99}
            )
            assert wrong.status_code == 422
            while item is not None:
                reply = client.post(
                    f"/api/v1/sessions/{sid}/answers", json={"item_id": item["id"], "response": 0}
                )
                assert reply.status_code == 200
                item = reply.json()["item"]
            result = client.get(f"/api/v1/sessions/{sid}/result")
            assert result.status_code == 200
            assert 0 <= result.json()["overall"]["score"] <= 100
    finally:
        app.state.db.dispose()
