"""Service settings: one frozen object, read from the environment or the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///nangluc.db"
DEFAULT_MAX_BODY_SIZE = 64 * 1024
DEFAULT_REPORT_MIN_GROUP = 20
DEFAULT_REPORT_EPSILON = 1.0
REPORT_PERIODS = ("quarter", "month", "week")
DEFAULT_MAX_HEADER_SIZE = 16 * 1024
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

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


def safe_url(url: str) -> str:
    """The database URL with any password hidden (for messages and logs)."""
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password to hide worth the risk
        return "<database URL>"


_ORIGIN = re.compile(r"^(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """A web origin as browsers send it: ``scheme://host[:port]``, lower case, no default port.

    Raises
    ------
    ValueError
        Anything that is not exactly an http(s) origin: a path, a query, a
        user name, a wildcard (``*``) or ``null``. An allow-list names each
        portal; it never allows every site.
    """
    text = value.strip()
    match = _ORIGIN.match(text.lower())
    if match is None or text.endswith("/"):
        raise ValueError(
            f"{value!r} is not an origin: expected scheme://host[:port] with http or https, "
            "and nothing after the host and port (no path, no '*')"
        )
    scheme, host, port = match.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} has a port outside 1..65535")
    if port is None or int(port) == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def parse_origins(values: str | Iterable[str]) -> tuple[str, ...]:
    """Origins from a comma-separated text or a list, normalised and without repeats."""
    items = values.split(",") if isinstance(values, str) else list(values)
    return tuple(dict.fromkeys(normalize_origin(v) for v in items if str(v).strip()))


def _parse_hashes(values: Iterable[str], role: str = "admin") -> tuple[str, ...]:
    hashes = []
    for value in values:
        value = value.strip().lower()
        if not value:
            continue
        if not _SHA256_HEX.match(value):
            raise ValueError(
                f"{role} key hashes must be SHA-256 hex digests (64 hex characters); "
                f"use NANGLUC_{role.upper()}_KEY for a plain key"
            )
        hashes.append(value)
    return tuple(dict.fromkeys(hashes))


@dataclass(frozen=True)
class Settings:
    """How the service runs.

    Every field has an environment variable (:data:`ENVIRONMENT`); ``nangluc
    serve`` reads them all, overrides what its flags give, and hands the result
    to every worker process (:meth:`to_env`).

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
    session_threads : int
        Threads per worker process that run the test-session units of work
        (start, read, answer, result), so that a request waiting on the
        database never holds up the event loop (``/health`` and other
        sessions are answered meanwhile). An answer is mostly Python work
        under the interpreter lock, so a few threads answer as fast as many
        and more only hand that lock around (measured with
        ``python -m benchmarks.service_load``: CHANGELOG); a session's answers
        take one thread at a time, so a session waiting on a held lock
        keeps at most one. At most ``2 * pool_size`` are used (the pool
        opens no more connections).
    planner_key_hashes : tuple of str
        SHA-256 hex digests of the planners' API keys (reports, cohorts);
        a separate role from the administrators'. Plain keys are hashed at
        start (:meth:`with_planner_keys`) and never kept.
    report_min_group : int
        Planner reports show levels and mean scores only for groups whose
        released (noisy) number of tests is at least this (default 20); the
        privacy noise, not this floor, is what protects a citizen (see
        :mod:`nangluc.service.privacy`).
    report_epsilon : float
        Privacy-loss budget of one test over all releases (default 1).
    report_period : str
        ``quarter`` (default), ``month`` or ``week``: the periods whose tests
        are released together, in Vietnam's time zone (UTC+7).
    report_simulees : int
        Simulated tests behind each measurement model (default 40,000).
    cohort_days : int
        Days a training cohort's link tags tests before it closes (default 90).
    wards_path : str or None
        The ward list file (None: the shipped list of Đà Nẵng's wards and communes).
    lock_timeout : float
        Seconds a unit of work waits for a lock (a session's row on
        PostgreSQL, the write lock on SQLite) or for a pooled connection
        before it gives up with 503 and ``Retry-After`` (default 5).
    statement_timeout : float
        Seconds one PostgreSQL statement may run before it is cancelled
        (default 30; 0 turns the limit off). Reports over a million sessions
        take about 2 s.
    max_header_size : int
        Largest request line plus headers in bytes; larger get 431 (default
        16 KiB).
    header_timeout : float
        Seconds a client has to send a request's line and headers once it
        starts (or once it connects); slower clients get 408 and are
        disconnected (default 10).
    body_timeout : float
        Seconds a client has to send a request's whole body after its headers
        (default 30); a body that never comes gets 408.
    gate_simulees, gate_tolerance : int, float
        The go-live gate's simulation (:class:`nangluc.calibration.gate.GatePolicy`):
        simulated citizens per bank (default 3,000) and the largest drop of
        level accuracy a new bank version may show (default 0.02).
    metrics : bool
        Serve Prometheus metrics at ``/metrics`` (default off).
    request_log : bool
        Write one JSON line per request (method, route template, status,
        duration; never a session id, body or query) on ``nangluc.request``.
    log_level : str
        Level of the service's own log (``nangluc.service``): critical,
        error, warning, info (default) or debug.
    embed_origins : tuple of str
        Web origins (``https://portal.example``) of the apps that embed the
        service: browser code on them may call the public API (CORS), and
        the citizen page opened with ``?embed=1`` may be framed by them and
        posts its result to them. Empty (default): no cross-origin calls, no
        framing.
    """

    database_url: str = DEFAULT_DATABASE_URL
    admin_key_hashes: tuple[str, ...] = field(default=(), repr=False)
    bank_path: str | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    pool_size: int = 16
    session_threads: int = 4
    planner_key_hashes: tuple[str, ...] = field(default=(), repr=False)
    report_min_group: int = DEFAULT_REPORT_MIN_GROUP
    report_epsilon: float = DEFAULT_REPORT_EPSILON
    report_period: str = "quarter"
    report_simulees: int = 40_000
    cohort_days: int = 90
    wards_path: str | None = None
    lock_timeout: float = 5.0
    statement_timeout: float = 30.0
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    gate_simulees: int = 3000
    gate_tolerance: float = 0.02
    metrics: bool = False
    request_log: bool = True
    log_level: str = "info"
    embed_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "embed_origins", parse_origins(self.embed_origins))
        sqlalchemy_url(self.database_url)  # fail early with a clear message
        object.__setattr__(self, "admin_key_hashes", _parse_hashes(self.admin_key_hashes))
        object.__setattr__(
            self, "planner_key_hashes", _parse_hashes(self.planner_key_hashes, "planner")
        )
        if not (math.isfinite(self.report_epsilon) and 0 < self.report_epsilon <= 20):
            raise ValueError(f"report_epsilon must lie in (0, 20], got {self.report_epsilon}")
        if self.report_period not in REPORT_PERIODS:
            raise ValueError(
                f"report_period must be one of {', '.join(REPORT_PERIODS)}, got {self.report_period!r}"
            )
        if not 1000 <= self.report_simulees <= 1_000_000:
            raise ValueError(
                f"report_simulees must lie in 1,000..1,000,000, got {self.report_simulees}"
            )
        if not 1 <= self.cohort_days <= 3660:
            raise ValueError(f"cohort_days must lie in 1..3660, got {self.cohort_days}")
        if self.wards_path is not None:
            object.__setattr__(self, "wards_path", str(self.wards_path))
        if self.max_body_size < 1024:
            raise ValueError(f"max_body_size must be at least 1024 bytes, got {self.max_body_size}")
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.session_threads < 1:
            raise ValueError(f"session_threads must be >= 1, got {self.session_threads}")
        if self.report_min_group < 1:
            raise ValueError(f"report_min_group must be >= 1, got {self.report_min_group}")
        if self.max_header_size < 1024:
            raise ValueError(
                f"max_header_size must be at least 1024 bytes, got {self.max_header_size}"
            )
        for name in ("lock_timeout", "header_timeout", "body_timeout"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if not (math.isfinite(self.statement_timeout) and self.statement_timeout >= 0):
            raise ValueError(
                f"statement_timeout must be >= 0 seconds (0: no limit), got {self.statement_timeout}"
            )
        if not 100 <= self.gate_simulees <= 1_000_000:
            raise ValueError(f"gate_simulees must lie in 100..1,000,000, got {self.gate_simulees}")
        if not (math.isfinite(self.gate_tolerance) and 0 <= self.gate_tolerance < 1):
            raise ValueError(f"gate_tolerance must lie in [0, 1), got {self.gate_tolerance}")
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}"
            )
        if self.bank_path is not None:
            object.__setattr__(self, "bank_path", str(self.bank_path))

    @property
    def sqlalchemy_url(self) -> str:
        return sqlalchemy_url(self.database_url)

    def with_admin_keys(self, *keys: str) -> Settings:
        """A copy that also accepts the given plain keys (stored as hashes)."""
        extra = tuple(hash_key(k) for k in keys if k)
        return dataclasses.replace(self, admin_key_hashes=self.admin_key_hashes + extra)

    def with_planner_keys(self, *keys: str) -> Settings:
        """A copy that also accepts the given plain planner keys (stored as hashes)."""
        extra = tuple(hash_key(k) for k in keys if k)
        return dataclasses.replace(self, planner_key_hashes=self.planner_key_hashes + extra)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from environment variables (:data:`ENVIRONMENT`; unset or empty: the default).

        ``NANGLUC_ADMIN_KEY`` (comma-separated plain keys) is hashed here and
        added to ``NANGLUC_ADMIN_KEYS`` (comma-separated SHA-256 hex digests).

        Raises
        ------
        ValueError
            A variable that does not parse, naming it.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable.name, "").strip()
            if not raw:
                continue
            try:
                values[name] = variable.parse(raw)
            except ValueError:
                raise ValueError(
                    f"{variable.name}={raw!r} is not valid: expected {variable.expected}"
                ) from None
        settings = cls(**values)
        plain = [k.strip() for k in env.get("NANGLUC_ADMIN_KEY", "").split(",") if k.strip()]
        if plain:
            settings = settings.with_admin_keys(*plain)
        plain = [k.strip() for k in env.get("NANGLUC_PLANNER_KEY", "").split(",") if k.strip()]
        return settings.with_planner_keys(*plain) if plain else settings

    def to_env(self) -> dict[str, str]:
        """Environment variables that make :meth:`from_env` rebuild these settings.

        Used to hand settings to uvicorn worker processes; carries only hashes.
        """
        env = {v.name: v.dump(getattr(self, name)) for name, v in ENVIRONMENT.items()}
        env["NANGLUC_ADMIN_KEY"] = ""
        env["NANGLUC_PLANNER_KEY"] = ""
        return env


@dataclass(frozen=True)
class EnvironmentVariable:
    """How one :class:`Settings` field is read from and written to the environment."""

    name: str
    parse: Callable[[str], Any]
    dump: Callable[[Any], str]
    expected: str


def _parse_bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _flag(name: str) -> EnvironmentVariable:
    return EnvironmentVariable(
        name, _parse_bool, lambda v: "1" if v else "0", "1/0, true/false or yes/no"
    )


def _seconds(name: str) -> EnvironmentVariable:
    return EnvironmentVariable(name, float, repr, "a number of seconds")


def _integer(name: str) -> EnvironmentVariable:
    return EnvironmentVariable(name, int, str, "an integer")


#: Settings field -> its environment variable. One table for reading and writing,
#: so that a new field cannot reach the main process and miss the workers.
ENVIRONMENT: dict[str, EnvironmentVariable] = {
    "database_url": EnvironmentVariable("DATABASE_URL", str, str, "a database URL"),
    "admin_key_hashes": EnvironmentVariable(
        "NANGLUC_ADMIN_KEYS",
        lambda raw: tuple(raw.split(",")),
        ",".join,
        "comma-separated SHA-256 hex digests",
    ),
    "bank_path": EnvironmentVariable(
        "NANGLUC_BANK", lambda raw: str(Path(raw)), lambda v: v or "", "a file path"
    ),
    "max_body_size": _integer("NANGLUC_MAX_BODY_SIZE"),
    "pool_size": _integer("NANGLUC_DB_POOL_SIZE"),
    "session_threads": _integer("NANGLUC_SESSION_THREADS"),
    "planner_key_hashes": EnvironmentVariable(
        "NANGLUC_PLANNER_KEYS",
        lambda raw: tuple(raw.split(",")),
        ",".join,
        "comma-separated SHA-256 hex digests",
    ),
    "report_min_group": _integer("NANGLUC_REPORT_MIN_GROUP"),
    "report_epsilon": EnvironmentVariable(
        "NANGLUC_REPORT_EPSILON", float, repr, "a number > 0 (the privacy budget of one test)"
    ),
    "report_period": EnvironmentVariable(
        "NANGLUC_REPORT_PERIOD", str, str, "quarter, month or week"
    ),
    "report_simulees": _integer("NANGLUC_REPORT_SIMULEES"),
    "cohort_days": _integer("NANGLUC_COHORT_DAYS"),
    "wards_path": EnvironmentVariable(
        "NANGLUC_WARDS", lambda raw: str(Path(raw)), lambda v: v or "", "a file path"
    ),
    "lock_timeout": _seconds("NANGLUC_DB_LOCK_TIMEOUT"),
    "statement_timeout": _seconds("NANGLUC_DB_STATEMENT_TIMEOUT"),
    "max_header_size": _integer("NANGLUC_MAX_HEADER_SIZE"),
    "header_timeout": _seconds("NANGLUC_HEADER_TIMEOUT"),
    "body_timeout": _seconds("NANGLUC_BODY_TIMEOUT"),
    "gate_simulees": _integer("NANGLUC_GATE_SIMULEES"),
    "gate_tolerance": EnvironmentVariable("NANGLUC_GATE_TOLERANCE", float, repr, "a proportion"),
    "metrics": _flag("NANGLUC_METRICS"),
    "request_log": _flag("NANGLUC_REQUEST_LOG"),
    "log_level": EnvironmentVariable(
        "NANGLUC_LOG_LEVEL", str.lower, str, "critical, error, warning, info or debug"
    ),
    "embed_origins": EnvironmentVariable(
        "NANGLUC_EMBED_ORIGINS",
        parse_origins,
        ",".join,
        "comma-separated origins such as https://portal.example (scheme, host and port only)",
    ),
}
