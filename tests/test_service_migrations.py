"""Schema migrations (Alembic) on SQLite and PostgreSQL.

- The revisions build exactly the tables the models describe (nothing left
  for autogenerate), and every revision downgrades and upgrades again.
- A database made by nangluc 0.1.0 (``tests/data/release_0_1_0``: that
  release's DDL, and sessions and answers it stored) is refused by
  ``nangluc serve`` with a message that says what to do, is upgraded in place
  by ``nangluc db upgrade`` with every row intact, and then serves its
  sessions on: an interrupted test is finished, finished results are read.
- Databases at an older or an unknown revision are refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nangluc.service import migrate, research
from nangluc.service.db import metadata
from nangluc.service.settings import Settings, sqlalchemy_url
from nangluc.service.store import Database
from service_fixtures import (
    DATABASES,
    ROOT,
    ServerProcess,
    bank_dict,
    fresh_database,
    write_bank,
)

RELEASE = Path(__file__).parent / "data" / "release_0_1_0"
TABLES = ("bank_version", "test_session", "response")


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(url))


def _nangluc(*args: str) -> Any:
    """``nangluc ARGS`` in this process (the real command, without a start-up per call)."""
    from click.testing import CliRunner

    from nangluc.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _nangluc_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``nangluc ARGS`` as an operator runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "nangluc", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.mark.parametrize("kind", DATABASES)
def test_revisions_build_exactly_the_models_and_downgrade(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        engine = _engine(url)
        try:
            with engine.begin() as conn:
                before = migrate.upgrade(conn)
                assert before.kind == "empty"
            with engine.connect() as conn:
                assert migrate.schema_state(conn).ready
                differences = compare_metadata(
                    MigrationContext.configure(conn, opts={"compare_type": True}), metadata
                )
            assert differences == [], differences
            with engine.begin() as conn:
                migrate.downgrade(conn, "base")
            with engine.connect() as conn:
                left = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
                assert left == set()
            with engine.begin() as conn:
                migrate.upgrade(conn)
            with engine.connect() as conn:
                assert migrate.schema_state(conn).ready
        finally:
            engine.dispose()


def _release_rows() -> dict[str, list[dict[str, Any]]]:
    return json.loads((RELEASE / "data.json").read_text(encoding="utf-8"))


def _build_release_database(url: str) -> None:
    """A database as nangluc 0.1.0 left it: its DDL, then its rows (by reflection)."""
    engine = _engine(url)
    dialect = engine.dialect.name
    try:
        with engine.begin() as conn:
            ddl = (RELEASE / f"schema.{dialect}.sql").read_text(encoding="utf-8")
            for statement in ddl.split(";"):
                lines = [line for line in statement.splitlines() if not line.startswith("--")]
                if "".join(lines).strip():
                    conn.exec_driver_sql("\n".join(lines))
            reflected = sa.MetaData()
            reflected.reflect(conn)
            for name, rows in _release_rows().items():
                conn.execute(reflected.tables[name].insert(), [_bind(r, dialect) for r in rows])
    finally:
        engine.dispose()


_UUIDS = ("id", "session_id")
_TIMES = ("created", "updated", "finished", "activated")


def _bind(row: dict[str, Any], dialect: str) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key == "id" and isinstance(value, int):
            continue  # let the database number the responses (its sequence moves on)
        if key in _UUIDS and value is not None:
            value = uuid.UUID(value).hex if dialect == "sqlite" else uuid.UUID(value)
        elif key in _TIMES and value is not None:
            value = datetime.fromisoformat(value)
        out[key] = value
    return out


def _session_key(r: Any) -> tuple:
    return (
        str(uuid.UUID(str(r["id"]))),
        r["status"],
        r["answered"],
        r["lock_version"],
        r["ward"],
        r["age_group"],
        json.dumps(_json(r["state"]), sort_keys=True),
        r["overall_score"],
        r["overall_level"],
        json.dumps(_json(r["area_scores"]), sort_keys=True),
    )


def _response_key(r: Any) -> tuple:
    return (str(uuid.UUID(str(r["session_id"]))), r["seq"], r["item_id"], r["response"], r["score"])


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _comparable(banks: Any, sessions: Any, responses: Any) -> dict[str, list[tuple]]:
    return {
        "bank_version": sorted(
            (b["version"], b["status"], _json(b["document"])["version"]) for b in banks
        ),
        "test_session": sorted(_session_key(r) for r in sessions),
        "response": sorted(_response_key(r) for r in responses),
    }


def _stored(url: str) -> dict[str, list[tuple]]:
    """The rows of the release's tables, in a form to compare with the fixture."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            reflected = sa.MetaData()
            reflected.reflect(conn, only=list(TABLES))
            rows = {
                name: conn.execute(sa.select(reflected.tables[name])).mappings().all()
                for name in TABLES
            }
    finally:
        engine.dispose()
    return _comparable(rows["bank_version"], rows["test_session"], rows["response"])


def _expected() -> dict[str, list[tuple]]:
    rows = _release_rows()
    return _comparable(rows["bank_version"], rows["test_session"], rows["response"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", DATABASES)
def test_a_release_0_1_0_database_is_upgraded_in_place(kind: str, tmp_path: Path) -> None:
    rows = _release_rows()
    with fresh_database(kind, tmp_path) as url:
        _build_release_database(url)
        expected = _expected()
        assert _stored(url) == expected  # the fixture is what 0.1.0 stored

        # nangluc serve refuses, and says what to do.
        refused = _nangluc("serve", "--database-url", url, "--port", "1")
        assert refused.exit_code == 1, refused.output
        assert "nangluc db upgrade --database-url" in refused.output
        assert "0.1.0" in refused.output and "Traceback" not in refused.output
        status = _nangluc("db", "status", "--database-url", url)
        assert status.exit_code == 1 and "(legacy)" in status.output, status.output
        assert _stored(url) == expected  # refusing changed nothing

        upgraded = _nangluc_process("db", "upgrade", "--database-url", url)
        assert upgraded.returncode == 0, upgraded.stderr
        assert f"upgraded from nangluc 0.1.0 to {migrate.head_revision()}" in upgraded.stdout
        again = _nangluc("db", "upgrade", "--database-url", url)
        assert again.exit_code == 0 and "already at revision" in again.output, again.output
        assert _stored(url) == expected  # every session and answer intact
        status = _nangluc("db", "status", "--database-url", url)
        assert status.exit_code == 0 and "(current)" in status.output, status.output

        # The service runs on it: results are read, interrupted tests go on.
        finished = [s for s in rows["test_session"] if s["status"] == "finished"]
        open_ = [s for s in rows["test_session"] if s["status"] == "in_progress"]
        assert finished and open_
        bank = write_bank(tmp_path / "bank.json", rows["bank_version"][0]["document"])
        with ServerProcess(url, bank) as server, httpx.Client(base_url=server.base) as http:
            for session in finished:
                result = http.get(f"/api/v1/sessions/{session['id']}/result")
                assert result.status_code == 200, result.text
                assert result.json()["overall"]["score"] == pytest.approx(session["overall_score"])
            rng = np.random.default_rng(1)
            for session in open_:
                state = http.get(f"/api/v1/sessions/{session['id']}").json()
                assert state["answered"] == session["answered"]
                item = state["item"]
                while item is not None:
                    reply = http.post(
                        f"/api/v1/sessions/{session['id']}/answers",
                        json={"item_id": item["id"], "response": int(rng.integers(4))},
                    )
                    assert reply.status_code == 200, reply.text
                    item = reply.json()["item"]
                assert http.get(f"/api/v1/sessions/{session['id']}/result").status_code == 200
            started = http.post("/api/v1/sessions", json={"ward": "Hải Châu"})
            assert started.status_code == 201
        # The export names respondents by pseudonyms made with the new key.
        database = Database(Settings(database_url=url))
        try:
            text = "".join(research.responses_csv(database))
        finally:
            database.dispose()
        for session in rows["test_session"]:
            assert session["id"] not in text and uuid.UUID(session["id"]).hex not in text


@pytest.mark.parametrize("kind", DATABASES)
def test_an_empty_database_starts_at_the_head_and_others_are_refused(
    kind: str, tmp_path: Path
) -> None:
    bank = write_bank(tmp_path / "bank.json", bank_dict())
    with fresh_database(kind, tmp_path) as url:
        database = Database(Settings(database_url=url, bank_path=str(bank)))
        try:
            database.setup()  # empty: created at the head
            with database.engine.connect() as conn:
                state = migrate.schema_state(conn)
            assert (state.kind, state.current) == ("current", migrate.head_revision())
            database.setup()  # again: nothing to do

            with database.engine.begin() as conn:
                conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
            with pytest.raises(migrate.SchemaError, match="newer nangluc"):
                database.setup()

            with database.engine.begin() as conn:
                conn.execute(
                    sa.text(f"UPDATE alembic_version SET version_num = '{migrate.BASELINE}'")
                )
                conn.execute(sa.text("DROP TABLE service_key"))
            with pytest.raises(migrate.SchemaError, match="nangluc db upgrade"):
                database.setup()
        finally:
            database.dispose()
        upgraded = _nangluc("db", "upgrade", "--database-url", url)
        assert upgraded.exit_code == 0, upgraded.output
        assert f"upgraded from {migrate.BASELINE}" in upgraded.output


def test_db_commands_refuse_bad_input_clearly() -> None:
    bad = _nangluc("db", "upgrade", "--database-url", "mysql://u@h/db")
    assert bad.exit_code == 1 and "unsupported database" in bad.output
    unreachable = _nangluc("db", "status", "--database-url", "postgresql://nobody@127.0.0.1:1/x")
    assert unreachable.exit_code == 1 and "cannot use the database" in unreachable.output
    assert "Traceback" not in bad.output + unreachable.output


@pytest.mark.parametrize("kind", DATABASES)
def test_sessions_older_than_test_definitions_get_the_citizen_tests_name(
    kind: str, tmp_path: Path
) -> None:
    # 0005 fills test_name/test_version of the sessions before it from their rules:
    # citizen-v1 -> citizen 1, citizen-v2 -> citizen 2.
    with fresh_database(kind, tmp_path) as url:
        _build_release_database(url)
        engine = _engine(url)
        try:
            with engine.begin() as conn:
                migrate.upgrade(conn, "0004_planner_reports")
                first = conn.execute(sa.text("SELECT id FROM test_session LIMIT 1")).scalar()
                conn.execute(
                    sa.text("UPDATE test_session SET config = 'citizen-v2' WHERE id = :id"),
                    {"id": first},
                )
                migrate.upgrade(conn)
                rows = conn.execute(
                    sa.text("SELECT id, config, test_name, test_version FROM test_session")
                ).all()
        finally:
            engine.dispose()
    assert len(rows) == len(_release_rows()["test_session"]) > 1
    for row in rows:
        expected = ("citizen", "2" if row.id == first else "1")
        assert (row.test_name, row.test_version) == expected, row
