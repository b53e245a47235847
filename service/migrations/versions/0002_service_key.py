"""Server-side keys; the first one turns session ids into export pseudonyms.

Revision ID: 0002_service_key
Revises: 0001_initial
Create Date: 2026-12-01

``responses.csv`` used to name each respondent by the session id, which is
also what lets a client answer on that session and read its result. Exports
now carry ``HMAC-SHA256(respondent key, session id)`` instead; the key is
made here, at random, once per database, and never leaves it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002_service_key"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    service_key = op.create_table(
        "service_key",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(
        service_key,
        [{"name": "respondent_id", "value": secrets.token_hex(32), "created": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("service_key")
