"""Alembic migrations of the service's database (see :mod:`nangluc.service.migrate`)."""
