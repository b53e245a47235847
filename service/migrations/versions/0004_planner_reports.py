"""Planner reports (issue #13): observed bins and cohorts of tests, releases, models, ward aliases.

Revision ID: 0004_planner_reports
Revises: 0003_activation_log
Create Date: 2026-12-01

``test_session`` gains ``report_bins`` (the observed score bins a release
counts), ``cohort`` and ``cohort_phase`` (a training class's link), and an
index on ``finished`` (releases select a period's tests by it). Tests that
finished before this revision have no bins and are not in any release.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_planner_reports"
down_revision = "0003_activation_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step is skipped when its object exists already, as in 0003: a
    # database may be marked at an older revision than its tables show.
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("test_session")}
    indexes = {i["name"] for i in inspector.get_indexes("test_session")}
    new_columns = [
        sa.Column("report_bins", sa.String(length=64), nullable=True),
        sa.Column("cohort", sa.String(length=16), nullable=True),
        sa.Column("cohort_phase", sa.String(length=8), nullable=True),
    ]
    missing = [c for c in new_columns if c.name not in columns]
    if missing:
        with op.batch_alter_table("test_session") as batch:
            for column in missing:
                batch.add_column(column)
    for name, column in (
        ("ix_test_session_cohort", "cohort"),
        ("ix_test_session_finished", "finished"),
    ):
        if name not in indexes:
            op.create_index(name, "test_session", [column])
    if "cohort" in tables:
        return  # the tables below were made by create_all in a development build
    op.create_table(
        "cohort",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_table(
        "report_release",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_report_release_start", "report_release", ["start"])
    op.create_index("ix_report_release_end", "report_release", ["end"])
    op.create_table(
        "measurement_model",
        sa.Column("bank_version", sa.String(length=200), nullable=False),
        sa.Column("config", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("bank_version", "config"),
    )
    op.create_table(
        "ward_alias",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("example", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("ward_alias")
    op.drop_table("measurement_model")
    op.drop_index("ix_report_release_end", table_name="report_release")
    op.drop_index("ix_report_release_start", table_name="report_release")
    op.drop_table("report_release")
    op.drop_table("cohort")
    op.drop_index("ix_test_session_finished", table_name="test_session")
    op.drop_index("ix_test_session_cohort", table_name="test_session")
    with op.batch_alter_table("test_session") as batch:
        batch.drop_column("cohort_phase")
        batch.drop_column("cohort")
        batch.drop_column("report_bins")
