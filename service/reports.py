"""Planner reports: level shares and mean scores by group, with 95% intervals, from releases.

A report never reads tests. It sums the stored releases
(:mod:`nangluc.service.releases`) of the periods inside the asked window, for
the asked grouping, and estimates each group's distribution of *true* scores
(:mod:`nangluc.service.statistics`): every share and mean carries an interval
for sampling, measurement and privacy noise. The same question over the same
releases gives the same answer.

Groupings: ``all``, ``ward``, ``age_group``, ``ward_age_group``, ``cohort``
(before, after and the change). Measures: ``overall``, an area code (``5``)
or a competence code (``5.2``). A competence is not measured on its own by
the test (it asks one to three of its criteria at most): its level is read
from the area's ability through the competence's criteria, so its figures are
a projection that holds as far as the area is one ability. The reports say so.

A report covers one framework: the active bank's. Its levels are that
framework's, and it counts only the tests of model blocks whose bank has the
same framework (:func:`framework_key`: the same area codes, levels with their
cut scores, and overall rule). Tests taken on a bank of another framework
(another city's, or a worked example) are in the releases but never mixed
into this framework's distributions; activating that framework's bank makes
the reports cover it instead.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from nangluc.engine import Scale
from nangluc.service import releases, statistics
from nangluc.service.banks import LoadedBank, NotFoundError, _text
from nangluc.service.db import RELEASE
from nangluc.service.releases import VIETNAM, ModelBlock
from nangluc.service.store import Database
from nangluc.service.wards import NONE, load_wards
from nangluc.text import csv_writer

GROUPINGS = ("all", "ward", "age_group", "ward_age_group", "cohort")
_TABLE = {
    "all": "all",
    "ward": "ward",
    "age_group": "age_group",
    "ward_age_group": "ward_age_group",
    "cohort": "cohort",
}


@dataclass(frozen=True)
class Measure:
    """What a report is about: the overall score, an area's or a competence's."""

    kind: str  # "overall" | "area" | "competence"
    code: str | None
    area: str | None  # the area whose estimates it reads
    name: dict[str, str]
    cuts: tuple[float, ...]  # lower bounds of the framework's levels 2..L on the read scale

    def to_json(self, language: str) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "name": self.name[language]}


def framework_key(loaded: LoadedBank) -> tuple:
    """What makes two banks' tests one population for a report: areas, levels, overall rule.

    Two bank versions of one framework (a recalibration, a new wording) have
    the same key; banks of different frameworks never do.
    """
    framework = loaded.document.framework
    areas = (
        tuple(a.code for a in framework.areas) if framework is not None else loaded.bank.area_codes
    )
    return (areas, loaded.bank.scale)


def _active(db: Database) -> LoadedBank:
    with db.engine.connect() as conn:
        return db.banks.get(db.banks.active_version(conn), conn)


def parse_measure(db: Database, measure: str | None, loaded: LoadedBank | None = None) -> Measure:
    """``overall``, an area code or a competence code of the active bank (``loaded``).

    Raises
    ------
    NotFoundError
        The code names no area or competence of the active bank (404).
    """
    measure = (measure or "overall").strip()
    loaded = loaded if loaded is not None else _active(db)
    standard = tuple(float(cut) for cut in loaded.bank.scale.cuts)
    if measure == "overall":
        return Measure("overall", None, None, {"vi": "Điểm chung", "en": "Overall score"}, standard)
    bank = loaded.bank
    if measure in bank.area_codes:
        name = {lang: loaded.area_name(measure, lang) for lang in ("vi", "en")}
        return Measure("area", measure, measure, name, standard)
    if measure in bank.competence:
        from nangluc.simulations.measurement import competence_cuts

        area, cuts = competence_cuts(bank, measure)
        framework = loaded.document.framework
        name = {"vi": measure, "en": measure}
        for competence in framework.competences if framework is not None else ():
            if competence.code == measure:
                name = {lang: _text(competence.name, lang) for lang in ("vi", "en")}
        return Measure("competence", measure, area, name, tuple(float(c) for c in cuts))
    raise NotFoundError(
        f"measure must be 'overall', an area code ({', '.join(bank.area_codes)}) or a "
        f"competence code of the active bank; there is no {measure!r}"
    )


def _window(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """UTC bounds of local dates: from ``start`` 00:00 to the end of ``end`` (Vietnam's time).

    A bound that falls outside the calendar's range (``from`` 0001-01-01 is
    still year 0 in UTC; the day after ``to`` 9999-12-31 is none) bounds
    nothing: no stored time lies beyond it. It was a 500.
    """
    low = high = None
    if start is not None:
        try:
            low = datetime(start.year, start.month, start.day, tzinfo=VIETNAM).astimezone(UTC)
        except OverflowError:
            low = None
    if end is not None:
        try:
            high = (
                datetime(end.year, end.month, end.day, tzinfo=VIETNAM) + timedelta(days=1)
            ).astimezone(UTC)
        except OverflowError:
            high = None
    return low, high


def _releases(db: Database, kind: str, low: datetime | None, high: datetime | None) -> list[dict]:
    query = sa.select(RELEASE.c.document).where(RELEASE.c.kind == kind)
    if low is not None:
        query = query.where(RELEASE.c.start >= low)
    if high is not None:
        query = query.where(RELEASE.c.end <= high)
    with db.engine.connect() as conn:
        return list(conn.execute(query.order_by(RELEASE.c.start, RELEASE.c.key)).scalars())


@dataclass
class _Sums:
    """Summed noisy counts of a report's groups: per block, (groups, bins) and noise variances."""

    groups: list[str]
    counts: dict[str, dict[str, np.ndarray]]  # block -> measure -> (groups, bins)
    variance: dict[str, dict[str, np.ndarray]]


def _sum_tables(documents: list[dict], table: str, groups: list[str]) -> _Sums:
    index = {g: i for i, g in enumerate(groups)}
    counts: dict[str, dict[str, np.ndarray]] = {}
    variance: dict[str, dict[str, np.ndarray]] = {}
    for document in documents:
        body = document["tables"].get(table)
        if body is None:
            continue
        rows = [index.get(g) for g in body["groups"]]
        keep = np.array([r is not None for r in rows])
        target = np.array([r for r in rows if r is not None], dtype=np.intp)
        for block, values in body["counts"].items():
            array = np.asarray(values, dtype=float)  # (measures, groups, bins)
            noise = body["noise"][block]
            for m, measure in enumerate(document["measures"][block]):
                c = counts.setdefault(block, {}).setdefault(
                    measure, np.zeros((len(groups), statistics.OBSERVED_BINS))
                )
                v = variance.setdefault(block, {}).setdefault(
                    measure, np.zeros((len(groups), statistics.OBSERVED_BINS))
                )
                np.add.at(c, target, array[m][keep])
                kind = "overall" if measure == "overall" else "area"
                v[target] += noise[kind]["variance"]
    return _Sums(groups, counts, variance)


def _estimate_json(e: statistics.Estimate, i: int, digits: int = 4) -> dict[str, float]:
    return {
        "value": round(float(e.value[i]), digits),
        "low": round(float(e.low[i]), digits),
        "high": round(float(e.high[i]), digits),
    }


@dataclass
class _Fitted:
    tests: np.ndarray
    tests_se: np.ndarray
    shown: np.ndarray
    reason: list[str | None]
    levels: list[statistics.Estimate]
    at_least: statistics.Estimate | None
    mean: statistics.Estimate | None


def _fit(
    db: Database,
    sums: _Sums,
    measure: Measure,
    at_least: int | None,
    min_group: int,
    scale: Scale,
    covered: set[str],
) -> _Fitted:
    """Fit every group of ``sums`` for ``measure`` (overall first, for the areas' levels).

    Only the model blocks of the bank versions in ``covered`` (the report's
    framework) are read; ``scale`` is that framework's.
    """
    n = len(sums.groups)
    n_levels = scale.n_levels
    read = "overall" if measure.kind == "overall" else str(measure.area)
    blocks: list[str] = []
    overall_kernels: list[statistics.Kernel] = []
    read_kernels: list[statistics.Kernel] = []
    for key in sorted(sums.counts):
        block = ModelBlock.parse(key)
        if block.bank_version not in covered:
            continue  # another framework's tests: never in this framework's distributions
        if read not in sums.counts[key] or "overall" not in sums.counts[key]:
            continue
        # Blocks whose rules had finished tests get a measurement model when
        # their release is drawn; the others hold only noise.
        model = releases.measurement_model(db, block, compute=False)
        if model is None or read not in ("overall", *model.areas):
            continue
        blocks.append(key)
        overall_kernels.append(model.overall)
        read_kernels.append(model.kernel(read))

    def stacked(measure_code: str, what: dict) -> np.ndarray:
        return np.concatenate([what[b][measure_code] for b in blocks], axis=1)

    tests = np.zeros(n)
    tests_var = np.zeros(n)
    for b in blocks:
        tests += sums.counts[b]["overall"].sum(axis=1)
        tests_var += sums.variance[b]["overall"].sum(axis=1)
    tests_se = np.sqrt(tests_var)
    if not blocks:
        empty = statistics.Estimate(*(np.zeros(n),) * 4)
        return _Fitted(
            tests, tests_se, np.zeros(n, bool), ["no_tests"] * n, [empty] * n_levels, None, None
        )
    overall_counts = stacked("overall", sums.counts)
    overall_noise = stacked("overall", sums.variance)
    shown = (tests >= min_group) & statistics.precise_enough(overall_counts, overall_noise)
    if read != "overall":
        read_counts, read_noise = stacked(read, sums.counts), stacked(read, sums.variance)
        shown &= statistics.precise_enough(read_counts, read_noise)
    reason: list[str | None] = [
        None if s else ("few_tests" if t < min_group else "too_noisy")
        for s, t in zip(shown, tests, strict=True)
    ]
    # Only the groups that will be shown are fitted (most cells of a fine
    # table are empty, and a fit of pure noise means nothing).
    rows = np.flatnonzero(shown)
    if rows.size == 0:
        nothing = statistics.Estimate(*(np.full(n, np.nan),) * 4)
        return _Fitted(tests, tests_se, shown, reason, [nothing] * n_levels, None, None)
    fit = statistics.fit_matched(overall_counts[rows], overall_kernels, overall_noise[rows])
    if read != "overall":
        anchors = statistics.mean_score(fit).value
        fit = statistics.fit_matched(
            read_counts[rows], read_kernels, read_noise[rows], anchor=anchors
        )
    bounds = (0.0, *measure.cuts, np.inf)
    levels = [
        _spread(statistics.share_between(fit, bounds[k], bounds[k + 1]), rows, n)
        for k in range(n_levels)
    ]
    cut = None if at_least is None else bounds[scale.position(at_least)]
    at_least_estimate = (
        None if cut is None else _spread(statistics.share_at_least(fit, cut), rows, n)
    )
    mean = _spread(statistics.mean_score(fit), rows, n) if measure.kind != "competence" else None
    return _Fitted(tests, tests_se, shown, reason, levels, at_least_estimate, mean)


def _spread(e: statistics.Estimate, rows: np.ndarray, n: int) -> statistics.Estimate:
    """Estimates of the fitted rows placed among all ``n`` groups (NaN elsewhere)."""
    out = []
    for values in (e.value, e.se, e.low, e.high):
        full = np.full(n, np.nan)
        full[rows] = values
        out.append(full)
    return statistics.Estimate(*out)


def _group_json(
    fitted: _Fitted, i: int, language: str, at_least: int | None, scale: Scale
) -> dict[str, Any]:
    shown = bool(fitted.shown[i])
    out: dict[str, Any] = {
        "tests": {
            "value": round(float(fitted.tests[i]), 1),
            "low": round(float(max(fitted.tests[i] - 1.96 * fitted.tests_se[i], 0.0)), 1),
            "high": round(float(fitted.tests[i] + 1.96 * fitted.tests_se[i]), 1),
        },
        "shown": shown,
        "withheld": fitted.reason[i],
        "levels": [],
        "at_least": None,
        "mean": None,
    }
    if not shown:
        return out
    out["levels"] = [
        {"level": level.code, "name": level.name(language), **_estimate_json(fitted.levels[k], i)}
        for k, level in enumerate(scale.levels)
    ]
    if fitted.at_least is not None and at_least is not None:
        out["at_least"] = {"level": at_least, **_estimate_json(fitted.at_least, i)}
    if fitted.mean is not None:
        out["mean"] = _estimate_json(fitted.mean, i, digits=2)
    return out


def _difference(
    after: _Fitted, before: _Fitted, i: int, j: int, at_least: int | None, scale: Scale
) -> dict:
    def one(a: statistics.Estimate, b: statistics.Estimate, bound: float, digits: int) -> dict:
        d = statistics.difference(_pick(a, i), _pick(b, j), bound=bound)
        return _estimate_json(d, 0, digits)

    if not (after.shown[i] and before.shown[j]):
        return {"shown": False, "levels": [], "at_least": None, "mean": None}
    return {
        "shown": True,
        "levels": [
            {"level": level.code, **one(after.levels[k], before.levels[k], 1.0, 4)}
            for k, level in enumerate(scale.levels)
        ],
        "at_least": (
            {"level": at_least, **one(after.at_least, before.at_least, 1.0, 4)}
            if after.at_least is not None and before.at_least is not None
            else None
        ),
        "mean": one(after.mean, before.mean, 100.0, 2) if after.mean is not None else None,
    }


def _pick(e: statistics.Estimate, i: int) -> statistics.Estimate:
    return statistics.Estimate(*(np.asarray(x)[i : i + 1] for x in (e.value, e.se, e.low, e.high)))


def _age_label(code: str, language: str) -> str:
    if code == NONE:
        return "Not given" if language == "en" else "Không ghi"
    if code == "under-15":
        return "Under 15" if language == "en" else "Dưới 15"
    return code.replace("-", "–")


def level_report(
    db: Database,
    *,
    group_by: str = "all",
    measure: str | None = "overall",
    at_least: int | None = None,
    start: date | None = None,
    end: date | None = None,
    language: str = "vi",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The report a planner asked for (see the module docstring).

    Parameters
    ----------
    group_by : {"all", "ward", "age_group", "ward_age_group", "cohort"}
    measure : str
        ``overall``, an area code or a competence code.
    at_least : int, optional
        A level code of the active bank's framework: each group's share at or
        above it is added.
    start, end : date, optional
        The window (Vietnam's dates, both included); only whole periods
        inside it are used, and the report says which.
    language : {"vi", "en"}
    now : datetime, optional
        The time (tests); releases due by then are drawn first.

    A window that ends before it starts holds no period: the report has no
    figures and says so.

    Raises
    ------
    ValueError
        An unknown grouping.
    NotFoundError
        An unknown measure, or a level code the active framework does not have.
    """
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}, got {group_by!r}")
    if language not in ("vi", "en"):
        raise ValueError(f"language must be vi or en, got {language!r}")
    loaded = _active(db)
    scale = loaded.bank.scale
    if at_least is not None and at_least not in scale.codes:
        # Like an unknown measure: the active framework has no such level (404).
        raise NotFoundError(
            f"at_least must be a level code of the framework ({', '.join(map(str, scale.codes))}), "
            f"got {at_least!r}"
        )
    chosen = parse_measure(db, measure, loaded)
    low, high = _window(start, end)
    releases.ensure_releases(db, now)
    wards = load_wards(db.settings.wards_path)
    min_group = db.settings.report_min_group
    kind = "cohort" if group_by == "cohort" else "period"
    documents = _releases(db, kind, low, high)
    covered = _same_framework(db, loaded, documents)
    table = _TABLE[group_by]
    out_groups: list[dict[str, Any]] = []
    if group_by == "cohort":
        groups = [f"{d['cohort']['code']}|{p}" for d in documents for p in releases.COHORT_PHASES]
        sums = _Sums(groups, {}, {})
        for d in documents:
            part = _sum_tables([d], table, list(releases.COHORT_PHASES))
            _merge(sums, part, [f"{d['cohort']['code']}|{p}" for p in releases.COHORT_PHASES])
        fitted = _fit(db, sums, chosen, at_least, min_group, scale, covered)
        for c, d in enumerate(documents):
            i, j = 2 * c + 1, 2 * c  # after, before
            out_groups.append(
                {
                    "key": d["cohort"]["code"],
                    "cohort": d["cohort"]["code"],
                    "label": d["cohort"]["name"],
                    "before": _group_json(fitted, j, language, at_least, scale),
                    "after": _group_json(fitted, i, language, at_least, scale),
                    "change": _difference(fitted, fitted, i, j, at_least, scale),
                }
            )
    else:
        groups = releases.table_groups(table, wards)
        sums = _sum_tables(documents, table, groups)
        fitted = _fit(db, sums, chosen, at_least, min_group, scale, covered)
        for i, key in enumerate(sums.groups):
            out_groups.append(
                {
                    "key": key,
                    **_group_fields(group_by, key, wards, language),
                    **_group_json(fitted, i, language, at_least, scale),
                }
            )
    epsilon = max((d["epsilon"] for d in documents), default=db.settings.report_epsilon)
    return {
        "group_by": group_by,
        "measure": chosen.to_json(language),
        "at_least": at_least,
        "window": {
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
            "releases": [d["key"] for d in documents],
            "covers": (
                {"start": documents[0]["start"], "end": max(d["end"] for d in documents)}
                if documents
                else None
            ),
        },
        "privacy": {
            "epsilon": epsilon,
            "unit": "one finished test" if language == "en" else "một bài làm đã hoàn thành",
            "protects": releases.PROTECTS[language].format(epsilon=epsilon),
        },
        "framework": {
            "bank_version": loaded.version,
            "name": _text(loaded.document.framework.name, language)
            if loaded.document.framework is not None and loaded.document.framework.name
            else None,
            "bank_versions": sorted(covered),
        },
        "levels": [
            {"level": lv.code, "name": lv.name(language), "lower": lv.lower, "upper": lv.upper}
            for lv in scale.levels
        ],
        "min_group": min_group,
        "notes": _notes(chosen, group_by, language, bool(documents)),
        "groups": out_groups,
    }


def _same_framework(db: Database, active: LoadedBank, documents: list[dict]) -> set[str]:
    """The bank versions of the releases' model blocks that share the active bank's framework."""
    key = framework_key(active)
    versions = {ModelBlock.parse(b).bank_version for d in documents for b in d.get("blocks", ())}
    versions.add(active.version)
    covered = set()
    with db.engine.connect() as conn:
        for version in versions:
            try:
                if framework_key(db.banks.get(version, conn)) == key:
                    covered.add(version)
            except NotFoundError:  # a block of a version this database does not hold
                continue
    return covered


def _merge(total: _Sums, part: _Sums, keys: list[str]) -> None:
    index = [total.groups.index(k) for k in keys]
    for block, measures in part.counts.items():
        for measure, array in measures.items():
            c = total.counts.setdefault(block, {}).setdefault(
                measure, np.zeros((len(total.groups), statistics.OBSERVED_BINS))
            )
            v = total.variance.setdefault(block, {}).setdefault(
                measure, np.zeros((len(total.groups), statistics.OBSERVED_BINS))
            )
            c[index] += array
            v[index] += part.variance[block][measure]


def _group_fields(group_by: str, key: str, wards, language: str) -> dict[str, Any]:
    if group_by == "all":
        return {"label": "Cả thành phố" if language == "vi" else "Whole city"}
    if group_by == "ward":
        return {"ward": key, "label": wards.label(key, language)}
    if group_by == "age_group":
        return {"age_group": key, "label": _age_label(key, language)}
    ward, age = key.split("|")
    return {
        "ward": ward,
        "age_group": age,
        "label": f"{wards.label(ward, language)} · {_age_label(age, language)}",
    }


def _notes(measure: Measure, group_by: str, language: str, any_release: bool) -> list[str]:
    vi = language == "vi"
    notes = [
        (
            "Tỷ lệ và điểm trung bình là của điểm thật (đã tính sai số đo của bài làm thích ứng), "
            "kèm khoảng tin cậy 95% gồm sai số chọn mẫu, sai số đo và nhiễu bảo vệ riêng tư."
            if vi
            else "Shares and means are of true scores (the adaptive test's measurement error is "
            "taken out), with 95% intervals for sampling, measurement and the privacy noise."
        ),
        (
            "Nhóm có quá ít bài làm hoặc số liệu chủ yếu là nhiễu thì không hiện tỷ lệ."
            if vi
            else "Groups with too few tests, or whose counts are mostly noise, show no shares."
        ),
    ]
    if measure.kind == "competence":
        notes.append(
            "Bài kiểm tra ước lượng một năng lực cho mỗi lĩnh vực; mức của một năng lực thành phần "
            "được suy ra từ năng lực của lĩnh vực qua các tiêu chí của nó, không đo riêng."
            if vi
            else "The test estimates one ability per area; a competence's level is read from the "
            "area's ability through the competence's criteria, not measured on its own."
        )
    if group_by == "cohort":
        notes.append(
            "Thay đổi trước/sau tính như hai nhóm độc lập; nếu cùng người làm cả hai lần, khoảng "
            "tin cậy thực tế hẹp hơn."
            if vi
            else "The before/after change treats the two as independent groups; when the same "
            "people took both, the true interval is narrower."
        )
    if not any_release:
        notes.append(
            "Chưa có đợt công bố nào trong khoảng thời gian này (số liệu một kỳ được công bố sau "
            "khi kỳ kết thúc)."
            if vi
            else "No release covers this window yet (a period's figures are released after it ends)."
        )
    return notes


def level_report_csv(report: dict[str, Any]) -> str:
    """The report as CSV: one row per group and level; every text cell formula-escaped."""
    stream = io.StringIO()
    writer = csv_writer(stream, lineterminator="\r\n")
    writer.writerow(
        [
            "group",
            "label",
            "phase",
            "measure",
            "tests",
            "tests_low",
            "tests_high",
            "shown",
            "level",
            "level_name",
            "share",
            "share_low",
            "share_high",
            "mean",
            "mean_low",
            "mean_high",
            "epsilon",
        ]
    )
    measure = report["measure"]["code"] or report["measure"]["kind"]
    epsilon = report["privacy"]["epsilon"]
    for group in report["groups"]:
        parts = (
            [("before", group["before"]), ("after", group["after"]), ("change", group["change"])]
            if "before" in group
            else [("", group)]
        )
        for phase, body in parts:
            tests = body.get("tests") or {}
            mean = body.get("mean") or {}
            levels = body.get("levels") or [{}]
            rows = levels + (
                [{**body["at_least"], "level": f">={body['at_least']['level']}"}]
                if body.get("at_least")
                else []
            )
            for level in rows:
                writer.writerow(
                    [
                        group["key"],
                        group.get("label", ""),
                        phase,
                        measure,
                        tests.get("value", ""),
                        tests.get("low", ""),
                        tests.get("high", ""),
                        body.get("shown", ""),
                        level.get("level", ""),
                        level.get("name", ""),
                        level.get("value", ""),
                        level.get("low", ""),
                        level.get("high", ""),
                        mean.get("value", ""),
                        mean.get("low", ""),
                        mean.get("high", ""),
                        epsilon,
                    ]
                )
    return stream.getvalue()
