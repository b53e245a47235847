"""The schema of nangluc 0.1.0: bank versions, test sessions, responses.

Revision ID: 0001_initial
Revises:
Create Date: 2026-12-01

Databases created by 0.1.0 (``create_all``, no ``alembic_version`` table) are
stamped at this revision by ``nangluc db upgrade`` before newer revisions run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bank_version",
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("parent", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index(
        "uq_bank_version_one_active",
        "bank_version",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
        sqlite_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "test_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("bank_version", sa.String(length=200), nullable=False),
        sa.Column("config", sa.String(length=100), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("ward", sa.String(length=100), nullable=True),
        sa.Column("age_group", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("overall_score", sa.Float(), nullable=True),
        sa.Column("overall_se", sa.Float(), nullable=True),
        sa.Column("overall_level", sa.Integer(), nullable=True),
        sa.Column("overall_decided", sa.Boolean(), nullable=True),
        sa.Column("area_scores", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["bank_version"], ["bank_version.version"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("age_group", "bank_version", "status", "ward"):
        op.create_index(f"ix_test_session_{column}", "test_session", [column])
    op.create_table(
        "response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=100), nullable=False),
        sa.Column("response", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["test_session.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id", "item_id", name="uq_response_session_item"),
        sa.UniqueConstraint("session_id", "seq", name="uq_response_session_seq"),
    )
    op.create_index("ix_response_session_id", "response", ["session_id"])


def downgrade() -> None:
    op.drop_table("response")
    op.drop_table("test_session")
    op.drop_table("bank_version")
