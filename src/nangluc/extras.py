"""Optional parts of nangluc and the packages each one needs.

``pip install nangluc`` is the light core: the engine, the item bank and the
command line for banks and simulations without reports. The service, the
calibration and simulation reports come with extras. A command that needs a
missing extra stops with exit status 2 and names the extra to install.
"""

from __future__ import annotations

import importlib.util

import click

#: extra name -> the top-level modules it brings (checked without importing them)
EXTRAS: dict[str, tuple[str, ...]] = {
    "service": (
        "litestar",
        "sqlmodel",
        "sqlalchemy",
        "uvicorn",
        "psycopg",
        "threadpoolctl",
        "swagger_ui",
        "alembic",
        "prometheus_client",
        "pythonjsonlogger",
        "opendp",
    ),
    "calibration": ("pyarrow", "tqdm", "matplotlib"),
    "simulations": ("matplotlib", "tqdm", "dask", "distributed"),
    "shadow": ("highspy",),
}


class MissingExtraError(click.ClickException):
    """A command needs packages from an extra that is not installed (exit status 2)."""

    exit_code = 2

    def __init__(self, extra: str, missing: list[str], purpose: str | None = None) -> None:
        self.extra = extra
        self.missing = missing
        what = purpose or f"this needs the '{extra}' extra"
        super().__init__(
            f"{what} ({', '.join(missing)} not installed); "
            f"install it with: pip install 'nangluc[{extra}]'"
        )


def missing_modules(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """Modules of ``extra`` (or the given subset) that cannot be imported."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    wanted = EXTRAS[extra] if modules is None else modules
    return [name for name in wanted if importlib.util.find_spec(name) is None]


def require(extra: str, *modules: str, purpose: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless ``extra`` (or ``modules`` of it) is installed."""
    missing = missing_modules(extra, modules or None)
    if missing:
        raise MissingExtraError(extra, missing, purpose)
