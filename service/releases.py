"""Differentially private releases of planner statistics, drawn once per period or cohort.

Planners never read the tests themselves: every report is computed from
*releases* (``report_release`` rows), and a release is made once and kept:

* a **period release** holds the tests that finished in one period (a
  quarter by default, in Vietnam's time, UTC+7), released when the period
  has ended (and a grace of ten minutes has passed, for answers still being
  written). Its tables count the tests by ward, by age group and by ward ×
  age group; each cell holds one 10-bin histogram of the observed overall
  score and one per area (:func:`nangluc.service.statistics.encode_bins`);
* a **cohort release** holds the tests taken through one training cohort's
  link, by phase (before / after), released a day after the cohort closes.
  Cohort tests are in no period release: a trained class is a sample of its
  own, not of its ward.

Every count gets discrete Laplace noise (OpenDP, :mod:`nangluc.service.privacy`)
when the release is drawn. Because releases cover disjoint tests and are
never redrawn, asking again, asking for overlapping windows or for sums of
groups only recombines the same noisy numbers: nothing averages the noise
away, and every test's privacy loss stays at the budget ε.

The cells of a table do not depend on the data: every unit of the ward list
plus ``other`` and ``none``, every age group plus ``none``; every bank
version that was ever active with every registered test rule (a *model
block*; a test belongs to one). Releases are drawn by the first report that
needs them (:func:`ensure_releases`): the first report after a period ends
waits for its release (seconds; half a minute more the first time a bank
version's measurement model is tabulated).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine import CONFIGS
from nangluc.service import privacy
from nangluc.service.banks import ConflictError, NotFoundError
from nangluc.service.db import (
    BANK,
    COHORT,
    MEASUREMENT_MODEL,
    RELEASE,
    SESSION,
    WARD_ALIAS,
    utcnow,
)
from nangluc.service.schemas import AGE_GROUPS
from nangluc.service.statistics import OBSERVED_BINS
from nangluc.service.store import Database
from nangluc.service.wards import NONE, WardList, group_codes, load_wards, ward_key

logger = logging.getLogger("nangluc.service")

#: Vietnam's time (no daylight saving): periods begin at local midnight.
VIETNAM = timezone(timedelta(hours=7), "ICT")
#: Time after a period's end before it is released (answers in flight).
PERIOD_GRACE = timedelta(minutes=10)
#: Time after a cohort closes before it is released (tests started before
#: the close may still be finishing).
COHORT_GRACE = timedelta(days=1)
#: The tables of a period release and of a cohort release.
PERIOD_TABLES = ("all", "ward", "age_group", "ward_age_group")
COHORT_PHASES = ("before", "after")
RELEASE_FORMAT = 1
FINISHED = "finished"

PROTECTS = {
    "vi": (
        "Mỗi bài làm được bảo vệ bằng quyền riêng tư vi phân với ε = {epsilon:g}: mọi con số "
        "trong báo cáo gần như không đổi dù có hay không có bài làm của bất kỳ một người nào, "
        "nên không ai — kể cả người giữ khóa báo cáo và tự làm thêm bài — suy ra được điểm hay "
        "mức của một người. Số liệu được công bố một lần cho mỗi kỳ và mỗi lớp; hỏi lại chỉ "
        "nhận lại đúng các con số đó."
    ),
    "en": (
        "Every test is protected with differential privacy at ε = {epsilon:g}: every figure "
        "in a report is almost the same whether or not any one person's test is in the data, "
        "so nobody — not even a key holder who also takes tests — can work out one person's "
        "score or level. Figures are released once per period and per cohort; asking again "
        "returns the same numbers."
    ),
}


@dataclass(frozen=True)
class Period:
    """A release period: ``[start, end)`` in UTC, and its key (``2026-Q3``, ``2026-07``, ``2026-W27``)."""

    key: str
    start: datetime
    end: datetime


def period_of(moment: datetime, kind: str) -> Period:
    """The period of ``kind`` (quarter, month, week) that contains ``moment``."""
    local = moment.astimezone(VIETNAM)
    if kind == "quarter":
        first_month = 3 * ((local.month - 1) // 3) + 1
        start = datetime(local.year, first_month, 1, tzinfo=VIETNAM)
        end = _add_months(start, 3)
        key = f"{local.year}-Q{(first_month - 1) // 3 + 1}"
    elif kind == "month":
        start = datetime(local.year, local.month, 1, tzinfo=VIETNAM)
        end = _add_months(start, 1)
        key = f"{local.year}-{local.month:02d}"
    elif kind == "week":
        monday = (local - timedelta(days=local.weekday())).date()
        start = datetime(monday.year, monday.month, monday.day, tzinfo=VIETNAM)
        end = start + timedelta(days=7)
        year, week, _ = monday.isocalendar()
        key = f"{year}-W{week:02d}"
    else:
        raise ValueError(f"unknown period {kind!r} (quarter, month or week)")
    return Period(key, start.astimezone(UTC), end.astimezone(UTC))


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


def closed_periods(first: datetime, now: datetime, kind: str) -> list[Period]:
    """Periods from the one containing ``first`` up to the last that ended (plus grace) by ``now``."""
    periods = []
    period = period_of(first, kind)
    while period.end + PERIOD_GRACE <= now:
        periods.append(period)
        period = period_of(period.end + timedelta(seconds=1), kind)
    return periods


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------ domain
@dataclass(frozen=True)
class ModelBlock:
    """A bank version and test rules: tests of one block share a measurement model."""

    bank_version: str
    config: str

    @property
    def key(self) -> str:
        return f"{self.bank_version}|{self.config}"

    @classmethod
    def parse(cls, key: str) -> ModelBlock:
        version, _, config = key.partition("|")
        return cls(version, config)


def model_blocks(conn: sa.Connection) -> list[ModelBlock]:
    """Every bank version that was ever active, with every registered test rule (public facts)."""
    versions = conn.execute(
        sa.select(BANK.c.version)
        .where(BANK.c.activated.is_not(None) | (BANK.c.status == "active"))
        .order_by(BANK.c.version)
    ).scalars()
    return [ModelBlock(v, c) for v in versions for c in sorted(CONFIGS)]


def table_groups(table: str, wards: WardList) -> list[str]:
    """The cells of a table, as group keys (``hai-chau``, ``25-34``, ``hai-chau|25-34``)."""
    ages = [*AGE_GROUPS, NONE]
    if table == "all":
        return ["all"]
    if table == "ward":
        return list(group_codes(wards))
    if table == "age_group":
        return ages
    if table == "ward_age_group":
        return [f"{w}|{a}" for w in group_codes(wards) for a in ages]
    if table == privacy.COHORT_TABLE:
        return list(COHORT_PHASES)
    raise ValueError(f"unknown table {table!r}")


def ward_aliases(conn: sa.Connection) -> dict[str, str]:
    """Administrators' mappings: ward key -> unit code."""
    return {
        row.key: row.code for row in conn.execute(sa.select(WARD_ALIAS.c.key, WARD_ALIAS.c.code))
    }


# ------------------------------------------------------------------ counts
def _histograms(
    conn: sa.Connection,
    where: sa.ColumnElement[bool],
    extra: Iterable[sa.ColumnElement[Any]],
    n_measures: int,
) -> list[tuple]:
    """Counts of finished tests by block, the ``extra`` columns and each measure's bin.

    One ``GROUP BY`` per measure, in the database: rows come back per
    distinct (block, extra, bin), never per test.
    """
    rows: list[tuple] = []
    extra = list(extra)
    for m in range(n_measures):
        digit = sa.func.substr(SESSION.c.report_bins, m + 1, 1).label("bin")
        query = (
            sa.select(
                SESSION.c.bank_version,
                SESSION.c.config,
                *extra,
                digit,
                sa.func.count().label("n"),
            )
            .where(where, sa.func.length(SESSION.c.report_bins) > m)
            .group_by(SESSION.c.bank_version, SESSION.c.config, *extra, digit)
        )
        rows.extend((m, *row) for row in conn.execute(query))
    return rows


def _empty_counts(blocks: list[ModelBlock], measures: dict[str, list[str]], groups: int) -> dict:
    return {
        b.key: np.zeros((len(measures[b.key]), groups, OBSERVED_BINS), dtype=np.int64)
        for b in blocks
    }


def _block_measures(db: Database, blocks: list[ModelBlock], conn: sa.Connection) -> dict:
    return {b.key: ["overall", *db.banks.get(b.bank_version, conn).bank.area_codes] for b in blocks}


def _noisy_tables(
    counts: dict[str, dict[str, np.ndarray]],
    measures: dict[str, list[str]],
    epsilon: float,
) -> tuple[dict[str, Any], float]:
    """Noise on every count (OpenDP), and the ε one test spends in these tables."""
    tables: dict[str, Any] = {}
    spent_by_block: dict[str, float] = {}
    for table, by_block in counts.items():
        out_counts, noise_out = {}, {}
        for key, array in by_block.items():
            n_areas = max(len(measures[key]) - 1, 1)
            noise = privacy.table_noise(table, epsilon, n_areas)
            noisy = np.empty_like(array)
            for m in range(array.shape[0]):
                scale = noise.overall.scale if m == 0 else noise.area.scale
                noisy[m] = privacy.add_noise(array[m], scale)
            out_counts[key] = noisy.tolist()
            noise_out[key] = {
                "overall": {"scale": noise.overall.scale, "variance": noise.overall.variance},
                "area": {"scale": noise.area.scale, "variance": noise.area.variance},
                "epsilon": noise.epsilon,
            }
            spent_by_block[key] = spent_by_block.get(key, 0.0) + noise.epsilon
        tables[table] = {"counts": out_counts, "noise": noise_out}
    return tables, max(spent_by_block.values(), default=0.0)


def _document(
    kind: str,
    key: str,
    start: datetime,
    end: datetime,
    epsilon: float,
    spent: float,
    tables: dict[str, Any],
    groups: dict[str, list[str]],
    blocks: list[ModelBlock],
    measures: dict[str, list[str]],
    wards: WardList,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    for table, body in tables.items():
        body["groups"] = groups[table]
    return {
        "format": RELEASE_FORMAT,
        "kind": kind,
        "key": key,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "epsilon": epsilon,
        "epsilon_spent": round(spent, 12),
        "unit": "one finished test",
        "blocks": [b.key for b in blocks],
        "measures": measures,
        "bins": OBSERVED_BINS,
        "wards": {"as_of": wards.as_of, "codes": list(wards.codes)},
        "tables": tables,
        **(extra or {}),
    }


def build_period_release(db: Database, period: Period, *, wards: WardList | None = None) -> dict:
    """Count the period's tests in the three tables, add the noise, return the release document."""
    wards = wards or load_wards(db.settings.wards_path)
    epsilon = db.settings.report_epsilon
    with db.engine.connect() as conn:
        blocks = model_blocks(conn)
        measures = _block_measures(db, blocks, conn)
        aliases = ward_aliases(conn)
        n_measures = max((len(m) for m in measures.values()), default=1)
        where = sa.and_(
            SESSION.c.status == FINISHED,
            SESSION.c.report_bins.is_not(None),
            SESSION.c.cohort.is_(None),
            SESSION.c.finished >= period.start,
            SESSION.c.finished < period.end,
        )
        rows = _histograms(conn, where, [SESSION.c.ward, SESSION.c.age_group], n_measures)
    groups = {t: table_groups(t, wards) for t in PERIOD_TABLES}
    index = {t: {g: i for i, g in enumerate(groups[t])} for t in PERIOD_TABLES}
    counts = {t: _empty_counts(blocks, measures, len(groups[t])) for t in PERIOD_TABLES}
    matched: dict[str | None, str] = {}
    for m, version, config, ward, age, digit, n in rows:
        key = f"{version}|{config}"
        if key not in counts["ward"] or m >= len(measures[key]):
            continue  # rules this server does not know: not countable
        if ward not in matched:
            matched[ward] = wards.match(ward, aliases)
        code = matched[ward]
        age = age if age in AGE_GROUPS else NONE
        b = int(digit)
        counts["all"][key][m, 0, b] += n
        counts["ward"][key][m, index["ward"][code], b] += n
        counts["age_group"][key][m, index["age_group"][age], b] += n
        counts["ward_age_group"][key][m, index["ward_age_group"][f"{code}|{age}"], b] += n
    tables, spent = _noisy_tables(counts, measures, epsilon)
    return _document(
        "period",
        f"period:{period.key}",
        period.start,
        period.end,
        epsilon,
        spent,
        tables,
        groups,
        blocks,
        measures,
        wards,
        {"period": period.key},
    )


def build_cohort_release(
    db: Database,
    code: str,
    name: str,
    start: datetime,
    end: datetime,
    *,
    wards: WardList | None = None,
) -> dict:
    """Count one cohort's tests by phase, add the noise, return the release document."""
    wards = wards or load_wards(db.settings.wards_path)
    epsilon = db.settings.report_epsilon
    with db.engine.connect() as conn:
        blocks = model_blocks(conn)
        measures = _block_measures(db, blocks, conn)
        n_measures = max((len(m) for m in measures.values()), default=1)
        where = sa.and_(
            SESSION.c.status == FINISHED,
            SESSION.c.report_bins.is_not(None),
            SESSION.c.cohort == code,
            SESSION.c.finished < end,
        )
        rows = _histograms(conn, where, [SESSION.c.cohort_phase], n_measures)
    table = privacy.COHORT_TABLE
    groups = {table: table_groups(table, wards)}
    counts = {table: _empty_counts(blocks, measures, len(COHORT_PHASES))}
    for m, version, config, phase, digit, n in rows:
        key = f"{version}|{config}"
        if key not in counts[table] or phase not in COHORT_PHASES or m >= len(measures[key]):
            continue
        counts[table][key][m, COHORT_PHASES.index(phase), int(digit)] += n
    tables, spent = _noisy_tables(counts, measures, epsilon)
    return _document(
        "cohort",
        f"cohort:{code}",
        start,
        end,
        epsilon,
        spent,
        tables,
        groups,
        blocks,
        measures,
        wards,
        {"cohort": {"code": code, "name": name}},
    )


def _store(db: Database, document: dict, start: datetime, end: datetime) -> bool:
    """Store a release unless another worker stored the same key first (then keep theirs)."""
    try:
        with db.transaction() as conn:
            conn.execute(
                RELEASE.insert().values(
                    key=document["key"],
                    kind=document["kind"],
                    start=start,
                    end=end,
                    created=utcnow(),
                    epsilon=document["epsilon"],
                    document=document,
                )
            )
    except ConflictError:  # a concurrent builder stored this key first: theirs stands
        return False
    return True


_BUILD_LOCK = threading.Lock()


def ensure_releases(db: Database, now: datetime | None = None) -> list[str]:
    """Release every closed period and closed cohort not released yet; their keys.

    Periods start from the first bank version's creation (when the service
    was set up: not a fact about any test). Measurement models for the
    released blocks are tabulated too (:func:`ensure_measurement_models`).
    """
    now = _aware(now) or utcnow()
    made: list[str] = []
    with _BUILD_LOCK:
        with db.engine.connect() as conn:
            first = _aware(conn.execute(sa.select(sa.func.min(BANK.c.created))).scalar())
            released = set(conn.execute(sa.select(RELEASE.c.key)).scalars())
            cohorts = conn.execute(
                sa.select(COHORT.c.code, COHORT.c.name, COHORT.c.created, COHORT.c.closes)
            ).all()
        if first is None:
            return made
        for period in closed_periods(first, now, db.settings.report_period):
            key = f"period:{period.key}"
            if key in released:
                continue
            document = build_period_release(db, period)
            if _store(db, document, period.start, period.end):
                made.append(key)
        for code, name, created, closes in cohorts:
            closes = _aware(closes)
            key = f"cohort:{code}"
            if key in released or closes + COHORT_GRACE > now:
                continue
            document = build_cohort_release(db, code, name, _aware(created), closes + COHORT_GRACE)
            if _store(db, document, _aware(created), closes):
                made.append(key)
    if made:
        logger.info("released planner statistics: %s", ", ".join(made))
        ensure_measurement_models(db)
    return made


# --------------------------------------------------------- measurement models
_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def measurement_model(db: Database, block: ModelBlock, *, compute: bool = True):
    """The stored measurement model of ``block`` (tabulated and stored if missing and ``compute``).

    Returns None when it is missing and not computed, or when the block's
    rules are unknown to this server.
    """
    from nangluc.simulations.measurement import MeasurementModel
    from nangluc.simulations.measurement import measurement_model as tabulate

    cache_key = (block.bank_version, block.config)
    cached = _MODELS.get(cache_key)
    if cached is not None:
        return cached
    with db.engine.connect() as conn:
        document = conn.execute(
            sa.select(MEASUREMENT_MODEL.c.document).where(
                MEASUREMENT_MODEL.c.bank_version == block.bank_version,
                MEASUREMENT_MODEL.c.config == block.config,
            )
        ).scalar()
    if document is not None:
        model = MeasurementModel.from_json(document)
    elif compute and block.config in CONFIGS:
        bank = db.banks.get(block.bank_version).bank
        model = tabulate(bank, CONFIGS[block.config], simulees=db.settings.report_simulees)
        try:
            with db.transaction() as conn:
                conn.execute(
                    MEASUREMENT_MODEL.insert().values(
                        bank_version=block.bank_version,
                        config=block.config,
                        created=utcnow(),
                        document=model.to_json(),
                    )
                )
        except ConflictError:  # another worker stored it first: same seed, same model
            logger.info("measurement model %s was stored by another worker", block.key)
    else:
        return None
    with _MODELS_LOCK:
        _MODELS[cache_key] = model
    return model


def ensure_measurement_models(db: Database, blocks: Iterable[ModelBlock] | None = None) -> None:
    """Tabulate the measurement models of blocks that have tests and no model yet."""
    with db.engine.connect() as conn:
        if blocks is None:
            used = conn.execute(
                sa.select(SESSION.c.bank_version, SESSION.c.config)
                .where(SESSION.c.status == FINISHED)
                .distinct()
            ).all()
            blocks = [ModelBlock(v, c) for v, c in used]
    for block in blocks:
        if block.config in CONFIGS:
            measurement_model(db, block)


def clear_model_cache() -> None:
    """Forget the process's cached measurement models (tests)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def unmatched_wards(db: Database, *, limit: int = 500) -> list[dict[str, Any]]:
    """Ward texts of finished tests that match no unit: the ``other`` group, for administrators.

    Each distinct matching key once, with one text as typed and the number of
    finished tests that gave it (administrators see the raw data anyway).
    """
    wards = load_wards(db.settings.wards_path)
    with db.engine.connect() as conn:
        aliases = ward_aliases(conn)
        rows = conn.execute(
            sa.select(SESSION.c.ward, sa.func.count().label("n"))
            .where(SESSION.c.status == FINISHED, SESSION.c.ward.is_not(None))
            .group_by(SESSION.c.ward)
        ).all()
    found: dict[str, dict[str, Any]] = {}
    for text, n in rows:
        if wards.match(text, aliases) != "other":
            continue
        key = ward_key(text)
        entry = found.setdefault(key, {"key": key, "example": text, "tests": 0})
        entry["tests"] += n
    return sorted(found.values(), key=lambda e: (-e["tests"], e["key"]))[:limit]


def add_ward_alias(db: Database, text: str, code: str) -> dict[str, Any]:
    """Map a ward text (by its key) to a unit; later releases count it there.

    Raises
    ------
    NotFoundError
        The code is not a unit of the ward list (404).
    ConflictError
        The text is empty once cleaned, or already names a unit (409).
    """
    wards = load_wards(db.settings.wards_path)
    if code not in wards.codes:
        raise NotFoundError(f"{code!r} is not a unit code of the ward list")
    key = ward_key(text)
    if not key:
        raise ConflictError("the ward text is empty once spaces and prefixes are taken away")
    if wards.match(text) != "other":
        raise ConflictError(f"{text!r} already matches a unit ({wards.match(text)})")
    now = utcnow()
    with db.transaction() as conn:
        conn.execute(WARD_ALIAS.delete().where(WARD_ALIAS.c.key == key))
        conn.execute(
            WARD_ALIAS.insert().values(key=key, code=code, example=text[:100], created=now)
        )
    return {"key": key, "code": code, "example": text[:100]}


def release_summaries(db: Database) -> list[dict[str, Any]]:
    """Every stored release: key, kind, period, ε and when it was drawn (newest first)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                RELEASE.c.key,
                RELEASE.c.kind,
                RELEASE.c.start,
                RELEASE.c.end,
                RELEASE.c.created,
                RELEASE.c.epsilon,
            ).order_by(RELEASE.c.end.desc(), RELEASE.c.key)
        ).all()
    return [
        {
            "key": r.key,
            "kind": r.kind,
            "start": _aware(r.start),
            "end": _aware(r.end),
            "created": _aware(r.created),
            "epsilon": r.epsilon,
        }
        for r in rows
    ]
