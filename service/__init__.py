"""nangluc service: the engine over HTTP (Litestar), persisted with SQLModel.

``create_app(settings)`` builds the application; ``nangluc serve`` (or
``python -m nangluc.service``) runs it. SQLite file by default, PostgreSQL via
``DATABASE_URL``.
"""

from nangluc.service.settings import Settings


def create_app(settings: Settings | None = None):  # noqa: ANN201 - Litestar, imported lazily
    """Build the Litestar application (see :func:`nangluc.service.app.create_app`)."""
    from nangluc.service.app import create_app as _create_app

    return _create_app(settings)


__all__ = ["Settings", "create_app"]
