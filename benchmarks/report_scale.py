"""A planner report over 1,000,000 finished sessions on PostgreSQL (DESIGN §5, "Planner reports").

The benchmark fills a database of its own (``nangluc_report_scale`` on the
local server, created if missing and emptied first) with finished sessions
as the service stores them: a pool of simulees takes the real adaptive test
(the default citizen test on the shipped bank) and its rows are spread over
the city's wards, the age groups and four quarters of 2026, then copied in
with ``COPY``. It then measures, through the HTTP API:

1. drawing the releases (one per quarter: the database's ``GROUP BY`` over the
   quarter's sessions, OpenDP's noise on every cell) and the measurement
   model (once per bank version and test rules) — what the first report after
   a quarter ends pays once;
2. the planners' report by ward × age group over the whole year (784 groups,
   four releases): the first request of a fresh process and the median of
   five more.

The figure of DESIGN §5 is the report's time, printed last.

Run: ``python -m benchmarks.report_scale [--sessions N] [--database-url URL] [--model-simulees N]``
"""

from __future__ import annotations

import argparse
import io
import statistics as stats
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from nangluc.engine import CITIZEN_TEST
from nangluc.service import releases, synthetic
from nangluc.service.db import BANK, SESSION
from nangluc.service.schemas import AGE_GROUPS
from nangluc.service.settings import Settings, sqlalchemy_url
from nangluc.service.wards import load_wards
from nangluc.simulations import draw_population

SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "nangluc_report_scale"
KEY = "report-scale-planner"
COLUMNS = [
    "id",
    "bank_version",
    "config",
    "language",
    "ward",
    "age_group",
    "status",
    "state",
    "answered",
    "lock_version",
    "created",
    "updated",
    "finished",
    "overall_score",
    "overall_se",
    "overall_level",
    "overall_decided",
    "area_scores",
    "report_bins",
]


def ensure_database(url: str) -> None:
    """Create the benchmark's own database if it does not exist (never another one)."""
    target = sa.make_url(sqlalchemy_url(url))
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def empty(engine: sa.Engine) -> None:
    """Drop every table of the benchmark's database (it is ours alone)."""
    with engine.begin() as conn:
        for table in sa.inspect(conn).get_table_names():
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{table}" CASCADE'))


def fill(db, sessions: int, pool_size: int, rng: np.random.Generator) -> float:
    """Insert ``sessions`` finished sessions with COPY; returns the seconds it took."""
    with db.engine.connect() as conn:
        bank = db.banks.get(db.banks.active_version(conn)).bank
    with db.engine.begin() as conn:
        conn.execute(BANK.update().values(created=datetime(2026, 1, 2, tzinfo=UTC)))
    theta = draw_population(pool_size, bank.n_areas, 0.7, rng, mean=-0.3)
    pool, _ = synthetic.simulated_rows(
        bank, CITIZEN_TEST, theta, rng, finished=datetime(2026, 1, 3, tzinfo=UTC)
    )
    wards = [u.full_name for u in load_wards().units] + ["Không rõ"]
    ward_weight = rng.dirichlet(np.full(len(wards), 2.0))
    ages = [*AGE_GROUPS, None]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        batch = 100_000
        for lo in range(0, sessions, batch):
            n = min(batch, sessions - lo)
            picks = rng.integers(0, pool_size, n)
            ward_idx = rng.choice(len(wards), n, p=ward_weight)
            age_idx = rng.integers(0, len(ages), n)
            offsets = rng.uniform(0, 360 * 86400, n)
            buffer = io.StringIO()
            for k in range(n):
                row = pool[picks[k]]
                moment = (start + timedelta(seconds=float(offsets[k]))).isoformat()
                age = ages[age_idx[k]]
                values = [
                    str(uuid.uuid4()),
                    row["bank_version"],
                    row["config"],
                    "vi",
                    wards[ward_idx[k]],
                    "\\N" if age is None else age,
                    "finished",
                    '{"synthetic": true}',
                    str(row["answered"]),
                    str(row["lock_version"]),
                    moment,
                    moment,
                    moment,
                    repr(row["overall_score"]),
                    repr(row["overall_se"]),
                    str(row["overall_level"]),
                    "t",
                    "[]",
                    row["report_bins"],
                ]
                buffer.write("\t".join(values) + "\n")
            with cursor.copy(f"COPY test_session ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            raw.commit()
            print(f"  {lo + n:,} sessions", flush=True)
    finally:
        raw.close()
    with db.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE test_session"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--pool", type=int, default=20_000, help="simulees whose tests are spread")
    parser.add_argument(
        "--database-url", default=f"{SERVER}/{DATABASE}", help="the benchmark's own database"
    )
    parser.add_argument("--model-simulees", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reuse", action="store_true", help="keep the sessions of a former run")
    args = parser.parse_args()

    from litestar.testing import TestClient

    from nangluc.service.app import create_app

    ensure_database(args.database_url)
    settings = Settings(
        database_url=args.database_url, report_simulees=args.model_simulees, statement_timeout=600
    ).with_planner_keys(KEY)
    engine = sa.create_engine(sqlalchemy_url(args.database_url))
    with engine.connect() as conn:
        have = (
            conn.execute(sa.select(sa.func.count()).select_from(SESSION)).scalar()
            if "test_session" in sa.inspect(conn).get_table_names()
            else 0
        )
    if not (args.reuse and have == args.sessions):
        empty(engine)
    engine.dispose()

    app = create_app(settings)
    db = app.state.db
    rng = np.random.default_rng(args.seed)
    if not (args.reuse and have == args.sessions):
        print(f"filling {args.database_url} with {args.sessions:,} finished sessions")
        seconds = fill(db, args.sessions, args.pool, rng)
        print(f"  inserted in {seconds:.1f} s")
    else:
        print(f"reusing {have:,} finished sessions")

    headers = {"X-API-Key": KEY}
    params = {"group_by": "ward_age_group", "from": "2026-01-01", "to": "2026-12-31"}
    with TestClient(app, timeout=600) as client:
        started = time.perf_counter()
        made = releases.ensure_releases(db, now=datetime(2027, 1, 2, tzinfo=UTC))
        release_seconds = time.perf_counter() - started
        print(
            f"releases drawn: {', '.join(made) or 'none (already drawn)'} in {release_seconds:.1f} s "
            f"(database GROUP BY, OpenDP noise and the measurement model of "
            f"{args.model_simulees:,} simulees, once)"
        )
        releases.clear_model_cache()  # the first report reads the model as a new process would
        started = time.perf_counter()
        first = client.get("/api/v1/reports/levels", params=params, headers=headers)
        cold = time.perf_counter() - started
        assert first.status_code == 200, first.text
        report = first.json()
        times = []
        for _ in range(5):
            started = time.perf_counter()
            again = client.get("/api/v1/reports/levels", params=params, headers=headers)
            times.append(time.perf_counter() - started)
            assert again.json() == report
    shown = sum(g["shown"] for g in report["groups"])
    tests = sum(g["tests"]["value"] for g in report["groups"])
    print(
        f"ward x age group report: {len(report['groups'])} groups ({shown} shown), "
        f"{len(report['window']['releases'])} releases, about {tests:,.0f} tests counted"
    )
    print(f"first request of a fresh process {cold:.2f} s")
    db.dispose()
    print(
        f"report by ward x age group over 1 year: median {stats.median(times):.2f} s "
        f"(max {max(times):.2f} s) over {len(times)} requests (goal < 2 s)"
    )


if __name__ == "__main__":
    main()
