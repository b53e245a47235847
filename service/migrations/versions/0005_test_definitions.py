"""Test definitions (issue #14): stored definitions, run-time settings, each session's test.

Revision ID: 0005_test_definitions
Revises: 0004_planner_reports
Create Date: 2026-12-06

New tables ``test_definition`` (name, version, document, what activation
derived, lifecycle; one active version per name) and ``service_setting``
(``default_test``). ``test_session`` gains ``test_name`` and ``test_version``;
sessions started before this revision ran the citizen test, and get its name
and the version of their rules (citizen-v2 -> 2, citizen-v1 -> 1).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_test_definitions"
down_revision = "0004_planner_reports"
branch_labels = None
depends_on = None

#: Sessions' engine config -> the citizen test's version it was.
CITIZEN_VERSIONS = {"citizen-v2": "2", "citizen-v1": "1"}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("test_session")}
    new_columns = [
        sa.Column("test_name", sa.String(length=64), nullable=True),
        sa.Column("test_version", sa.String(length=32), nullable=True),
    ]
    missing = [c for c in new_columns if c.name not in columns]
    if missing:
        with op.batch_alter_table("test_session") as batch:
            for column in missing:
                batch.add_column(column)
    indexes = {i["name"] for i in inspector.get_indexes("test_session")}
    if "ix_test_session_test_name" not in indexes:
        op.create_index("ix_test_session_test_name", "test_session", ["test_name"])
    session = sa.table(
        "test_session",
        sa.column("config", sa.String),
        sa.column("test_name", sa.String),
        sa.column("test_version", sa.String),
    )
    for config, version in CITIZEN_VERSIONS.items():
        op.execute(
            session.update()
            .where(session.c.config == config, session.c.test_name.is_(None))
            .values(test_name="citizen", test_version=version)
        )
    if "test_definition" not in tables:
        op.create_table(
            "test_definition",
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("version", sa.String(length=32), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("document", sa.JSON(), nullable=False),
            sa.Column("derived", sa.JSON(), nullable=True),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("activated", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("name", "version"),
        )
        op.create_index(
            "uq_test_definition_one_active",
            "test_definition",
            ["name"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
    if "service_setting" not in tables:
        op.create_table(
            "service_setting",
            sa.Column("key", sa.String(length=64), nullable=False),
            sa.Column("value", sa.String(length=200), nullable=False),
            sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )


def downgrade() -> None:
    op.drop_table("service_setting")
    op.drop_index("uq_test_definition_one_active", table_name="test_definition")
    op.drop_table("test_definition")
    op.drop_index("ix_test_session_test_name", table_name="test_session")
    with op.batch_alter_table("test_session") as batch:
        batch.drop_column("test_version")
        batch.drop_column("test_name")
