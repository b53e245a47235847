"""The audit log of bank activations (issue #15's go-live gate).

Revision ID: 0003_activation_log
Revises: 0002_service_key
Create Date: 2026-12-01

Between #15 landing and migrations landing, ``nangluc serve`` created this
table with ``create_all``; such a database (no migration history) is
upgraded like a 0.1.0 one, and the table it already has is kept.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_activation_log"
down_revision = "0002_service_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "activation_log" in sa.inspect(op.get_bind()).get_table_names():
        return  # made by create_all before migrations existed: same columns
    op.create_table(
        "activation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("previous", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activation_log_version", "activation_log", ["version"])


def downgrade() -> None:
    op.drop_table("activation_log")
