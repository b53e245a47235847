"""Alembic revisions, one file each, oldest first (see ``CONTRIBUTING.md``)."""
