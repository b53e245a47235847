"""Service settings: one frozen object, read from the environment or the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///nangluc.db"
DEFAULT_MAX_BODY_SIZE = 64 * 1024
DEFAULT_REPORT_MIN_GROUP = 5

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    """SHA-256 hex digest of an admin API key (only digests are kept)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def sqlalchemy_url(url: str) -> str:
    """Map a plain database URL to the SQLAlchemy URL with the driver we ship.

    ``sqlite:///path.db`` stays as it is (the standard library driver);
    ``postgresql://...`` and ``postgres://...`` use psycopg 3. A URL that
    already names a driver (``postgresql+psycopg://``) is kept.

    Raises
    ------
    ValueError
        If the URL is empty or names a database we do not support.
    """
    url = url.strip()
    if not url:
        raise ValueError("database URL is empty")
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"database URL {url!r} has no scheme (expected sqlite:///... or postgresql://...)"
        )
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith("postgresql+") or scheme == "sqlite" or scheme.startswith("sqlite+"):
        return f"{scheme}://{rest}"
    raise ValueError(
        f"unsupported database {scheme!r} in {url!r} (expected sqlite:///... or postgresql://...)"
    )


def _parse_hashes(values: Iterable[str]) -> tuple[str, ...]:
    hashes = []
    for value in values:
        value = value.strip().lower()
        if not value:
            continue
        if not _SHA256_HEX.match(value):
            raise ValueError(
                "admin key hashes must be SHA-256 hex digests (64 hex characters); "
                "use NANGLUC_ADMIN_KEY for a plain key"
            )
        hashes.append(value)
    return tuple(dict.fromkeys(hashes))


@dataclass(frozen=True)
class Settings:
    """How the service runs.

    Parameters
    ----------
    database_url : str
        Plain or SQLAlchemy URL; ``sqlite:///nangluc.db`` (in the working
        directory) by default.
    admin_key_hashes : tuple of str
        SHA-256 hex digests of the researcher API keys. Plain keys are hashed
        at start (:meth:`with_admin_keys`) and never kept.
    bank_path : str or None
        Bank file inserted (and activated if no bank is active) on first
        start; None is the shipped default bank.
    max_body_size : int
        Largest accepted request body in bytes; larger bodies get 413.
    pool_size : int
        Database connections kept open per worker process.
    database_threads : bool
        Run the test-session units of work (start, read, answer, result) in a
        thread pool instead of on the worker's event loop. Off by default:
        each unit is about a millisecond of CPU and one round trip, so thread
        hand-offs buy nothing. With ``python -m benchmarks.service_load`` on
        2 cores, inline served 1,068–1,120 answers/s over four runs and one
        threaded run 1,137/s (2026-11-27). On 2026-11-22, with a slower engine
        step and a slower day on the machine (health endpoint 11,000–17,000/s
        against 22,000–25,000/s), inline was clearly ahead (432–672/s against
        346–348/s).
        Researcher endpoints always run in threads.
    report_min_group : int
        Planner reports show levels and mean scores only for groups of at
        least this many finished tests (default 5); a smaller group shows its
        count alone, so that nobody's result can be read off a ward or age
        group with one or two test takers.
    """

    database_url: str = DEFAULT_DATABASE_URL
    admin_key_hashes: tuple[str, ...] = field(default=(), repr=False)
    bank_path: str | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    pool_size: int = 16
    database_threads: bool = False
    report_min_group: int = DEFAULT_REPORT_MIN_GROUP

    def __post_init__(self) -> None:
        sqlalchemy_url(self.database_url)  # fail early with a clear message
        object.__setattr__(self, "admin_key_hashes", _parse_hashes(self.admin_key_hashes))
        if self.max_body_size < 1024:
            raise ValueError(f"max_body_size must be at least 1024 bytes, got {self.max_body_size}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.report_min_group < 1:
            raise ValueError(f"report_min_group must be >= 1, got {self.report_min_group}")
        if self.bank_path is not None:
            object.__setattr__(self, "bank_path", str(self.bank_path))

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.database_url)

    def with_admin_keys(self, *keys: str) -> Settings:
        """A copy that also accepts the given plain keys (stored as hashes)."""
        extra = tuple(hash_key(k) for k in keys if k)
        return dataclasses.replace(self, admin_key_hashes=self.admin_key_hashes + extra)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables.

        ``DATABASE_URL``; ``NANGLUC_ADMIN_KEYS`` (comma-separated SHA-256 hex
        digests); ``NANGLUC_ADMIN_KEY`` (comma-separated plain keys, hashed
        here); ``NANGLUC_BANK`` (bank file); ``NANGLUC_MAX_BODY_SIZE``
        (bytes); ``NANGLUC_DB_POOL_SIZE``; ``NANGLUC_DB_THREADS`` (``1`` to run
        session work in threads); ``NANGLUC_REPORT_MIN_GROUP``.
        """
        env = os.environ if environ is None else environ
        max_body = env.get("NANGLUC_MAX_BODY_SIZE", "").strip()
        pool = env.get("NANGLUC_DB_POOL_SIZE", "").strip()
        min_group = env.get("NANGLUC_REPORT_MIN_GROUP", "").strip()
        bank = env.get("NANGLUC_BANK", "").strip()
        try:
            max_body_size = int(max_body) if max_body else DEFAULT_MAX_BODY_SIZE
            pool_size = int(pool) if pool else 16
            report_min_group = int(min_group) if min_group else DEFAULT_REPORT_MIN_GROUP
        except ValueError:
            raise ValueError(
                "NANGLUC_MAX_BODY_SIZE, NANGLUC_DB_POOL_SIZE and NANGLUC_REPORT_MIN_GROUP "
                "must be integers"
            ) from None
        settings = cls(
            database_url=env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            admin_key_hashes=tuple(env.get("NANGLUC_ADMIN_KEYS", "").split(",")),
            bank_path=str(Path(bank)) if bank else None,
            max_body_size=max_body_size,
            pool_size=pool_size,
            database_threads=env.get("NANGLUC_DB_THREADS", "").strip().lower()
            in ("1", "true", "yes"),
            report_min_group=report_min_group,
        )
        plain = [k.strip() for k in env.get("NANGLUC_ADMIN_KEY", "").split(",") if k.strip()]
        return settings.with_admin_keys(*plain) if plain else settings

    def to_env(self) -> dict[str, str]:
        """Environment variables that make :meth:`from_env` rebuild these settings.

        Used to hand settings to uvicorn worker processes; carries only hashes.
        """
        env = {
            "DATABASE_URL": self.database_url,
            "NANGLUC_ADMIN_KEYS": ",".join(self.admin_key_hashes),
            "NANGLUC_MAX_BODY_SIZE": str(self.max_body_size),
            "NANGLUC_DB_POOL_SIZE": str(self.pool_size),
            "NANGLUC_DB_THREADS": "1" if self.database_threads else "0",
            "NANGLUC_REPORT_MIN_GROUP": str(self.report_min_group),
            "NANGLUC_ADMIN_KEY": "",
        }
        env["NANGLUC_BANK"] = self.bank_path or ""
        return env
