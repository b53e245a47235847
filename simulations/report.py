"""A readable simulation report: Markdown with PNG plots.

``write_report(directory, bank, results, context)`` writes ``report.md``,
``summary.json`` and for each design the plots

* ``conditional``: bias and standard error of the overall score across the
  true score, and of each area's theta across the true theta;
* ``length``: the distribution of test length (and that of true-θ selection);
* ``confusion``: true against estimated overall level;
* ``exposure``: how often each item is given, by area;

plus, for several designs, ``comparison.png`` (mean length against level
accuracy). Files are built in a temporary directory and moved into place, so
an interrupted run leaves no half-written report.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.scale import Scale
from nangluc.simulations.core import conditional_accuracy, plain_json
from nangluc.simulations.study import DesignResult


def write_report(
    directory: str | Path,
    bank: ItemBank,
    results: Sequence[DesignResult],
    context: dict,
    *,
    grid: bool = False,
) -> Path:
    """Write the report of a study into ``directory`` (created if needed).

    Parameters
    ----------
    directory : str or Path
    bank : ItemBank
    results : sequence of DesignResult
        One per design, in the order to show.
    context : dict
        ``bank``, ``population``, ``seed`` descriptions (as in the JSON output).
    grid : bool
        Show the designs side by side first.

    Returns
    -------
    Path
        The written ``report.md``.
    """
    if not results:
        raise ValueError("nothing to report: no designs were run")
    summary = (
        {"designs": [r.summary for r in results], **context}
        if grid
        else {**results[0].summary, **context}
    )
    return _write(
        directory, summary, lambda staging: _markdown(staging, bank, results, context, grid)
    )


def write_replay_report(directory: str | Path, bank: ItemBank, result, context: dict) -> Path:
    """Write the report of a replay of recorded answers (:func:`nangluc.simulations.replay`)."""
    return _write(
        directory,
        {**result.summary, **context},
        lambda staging: _replay_markdown(staging, bank, result, context),
    )


def _write(directory: str | Path, summary: dict, markdown) -> Path:
    """``report.md`` (from ``markdown(staging)``, which also draws the plots) and ``summary.json``."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ValueError(f"report directory {target} is a file")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"cannot write the report: directory {parent} does not exist")
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a report is for reading
        lines = markdown(staging)
        (staging / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (staging / "summary.json").write_text(
            json.dumps(plain_json(summary), ensure_ascii=False, indent=2, allow_nan=False) + "\n",
            encoding="utf-8",
        )
        if not target.exists():
            os.rename(staging, target)
        else:
            for path in staging.iterdir():
                os.replace(path, target / path.name)
            staging.rmdir()
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target / "report.md"


# ------------------------------------------------------------------ markdown
def _markdown(
    out: Path, bank: ItemBank, results: Sequence[DesignResult], context: dict, grid: bool
) -> list[str]:
    b, pop = context.get("bank", {}), context.get("population", {})
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Simulation report"
        + (" — design comparison" if grid else f" — {results[0].design.name}"),
        "",
        f"*Generated {when} by `nangluc simulate` (seed {context.get('seed')}).*",
        "",
        f"- **Bank**: version {b.get('version', bank.version)} ({b.get('status') or 'status unknown'}), "
        f"{bank.n_items} items ({int(bank.operational.sum())} operational) in {bank.n_areas} area(s); "
        f"{b.get('path', '')}",
        f"- **Simulees**: {_population_text(pop)}",
        f"- **Scores**: overall score 0–100 ({_overall_text(bank.scale)}); levels "
        + ", ".join(
            f"{lv.code} {lv.name_vi} ({lv.name_en}) {_band(lv, bank.scale)}"
            for lv in bank.scale.levels
        )
        + ".",
        "- **How to read**: *RMSE* and *bias* are of the overall score in points; *level accuracy* is the "
        "share of simulees whose estimated overall level is their true level; *full bank* is the accuracy of "
        "answering every operational item; *true-θ selection* is the same test with items chosen at the true "
        "ability (a reference for item selection, not a bound: with a Bayesian estimate it can be less "
        "accurate than the test itself).",
        "",
    ]
    lines += planner_summary(results[0], context)
    if len(results) > 1:
        lines += _comparison_section(out, results)
    for number, result in enumerate(results, start=1):
        prefix = f"{number}-{_slug(result.design.name)}-" if len(results) > 1 else ""
        lines += _design_section(
            out, bank, result, prefix=prefix, names=context.get("bank", {}).get("area_names", {})
        )
    return lines


def _replay_markdown(out: Path, bank: ItemBank, result, context: dict) -> list[str]:
    s, b, r = result.summary, context.get("bank", {}), context.get("responses", {})
    when = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Replay of recorded answers — {s['name']}",
        "",
        f"*Generated {when} by `nangluc simulate --responses` (seed {context.get('seed')}).*",
        "",
        f"- **Bank**: version {b.get('version', bank.version)}, {bank.n_items} items "
        f"({int(bank.operational.sum())} operational) in {bank.n_areas} area(s)",
        f"- **Recorded answers**: {r.get('responses', '?'):,} from {s['respondents']:,} "
        f"respondents ({s['mean_responses_available']:.1f} scored answers each on average), "
        f"{r.get('source', '')}",
        "- **How to read**: each respondent's recorded answers are replayed through the test; "
        "items they did not answer are unavailable to them. The reference is their *full-pattern "
        "score* (every recorded answer, same estimator), not a true ability: *level agreement* is "
        "the share whose overall level equals the full-pattern level.",
        "",
    ]
    lines += _table(
        ["mean items", "level agreement", "score correlation", "RMSE", "bias", "max exposure"],
        [[_f(s["mean_items"], 2), _pct(s["level_agreement"]), _f(s["score_correlation"], 3),
          _f(s["rmse"], 2), _f(s["bias"], 2), _pct(s["exposure_max"])]],
    )  # fmt: skip
    lines += ["", "## By maximum test length", "",
              "A test that stopped earlier by its own rule keeps its result.", ""]  # fmt: skip
    lines += _table(
        ["max items", "mean items", "level agreement", "score correlation", "RMSE", "bias"],
        [[str(row["items"]), _f(row["mean_items"], 2), _pct(row["level_agreement"]),
          _f(row["score_correlation"], 3), _f(row["rmse"], 2), _f(row["bias"], 2)]
         for row in s["by_length"]],
    )  # fmt: skip
    _plot_by_length(out / "by_length.png", s["by_length"], s["name"])
    _plot_exposure(out / "exposure.png", bank, result.simulation, None, s["name"])
    lines += ["", "![agreement by length](by_length.png)", "", "![exposure](exposure.png)", ""]
    return lines


def _plot_by_length(path: Path, rows: list[dict], name: str) -> None:
    import matplotlib.pyplot as plt

    length = [row["items"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(length, [row["level_agreement"] for row in rows], "o-")
    left.set(xlabel="maximum scored items", ylabel="share", ylim=(0, 1.01),
             title="Level agreement with the full pattern")  # fmt: skip
    right.plot(length, [row["rmse"] for row in rows], "o-", label="RMSE")
    right.plot(length, [row["bias"] for row in rows], "s-", label="bias")
    right.axhline(0, color="0.6", lw=0.8)
    right.set(
        xlabel="maximum scored items",
        ylabel="points",
        title="Overall score against the full pattern",
    )
    right.legend(fontsize=8)
    fig.suptitle(f"{name}: replay by test length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _comparison_section(out: Path, results: Sequence[DesignResult]) -> list[str]:
    head = ["design", "mean items", "p90 items", "max items", "level accuracy", "RMSE", "bias",
            "vs true-θ selection length", "vs full-bank accuracy", "max exposure", "overlap", "seconds"]  # fmt: skip
    rows = []
    for r in results:
        s, ref = r.summary, r.summary.get("references", {})
        rows.append([
            f"**{r.design.name}**", _f(s["mean_items"], 1), _f(s["length"]["p90"], 0), str(s["length"]["max"]),
            _pct(s["level_accuracy"]), _f(s["rmse"], 2), _f(s["bias"], 2),
            _f(ref.get("length_vs_true_theta_selection"), 2, "×"), _pct(ref.get("accuracy_vs_full_bank")),
            _pct(s["exposure_max"]), _pct(s["overlap"]), _f(s["seconds"], 1),
        ])  # fmt: skip
    lines = ["## Designs side by side", "", *_table(head, rows), ""]
    changed = [r for r in results if r.design.overrides]
    if changed:
        lines += ["Settings changed from the base test:", ""]
        lines += [
            f"- **{r.design.name}**: " + ", ".join(f"{k} = {v}" for k, v in r.design.overrides)
            for r in changed
        ]
        lines.append("")
    _plot_comparison(out / "comparison.png", results)
    lines += ["![Mean test length against level accuracy](comparison.png)", ""]
    return lines


def _design_section(
    out: Path, bank: ItemBank, result: DesignResult, prefix: str, names: dict | None = None
) -> list[str]:
    names = names or {}
    s = result.summary
    ref = s.get("references")
    sim = result.result
    name = result.design.name
    lines = [f"## {name}", ""]
    lines += ["| examinees | mean items | level accuracy | mean stated probability | settled | RMSE | bias | mean SE | seconds |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| {s['examinees']:,} | {_f(s['mean_items'], 2)} | {_pct(s['level_accuracy'])} "
              f"| {_pct(s['mean_stated_probability'])} | {_pct(s['settled'])} | {_f(s['rmse'], 2)} "
              f"| {_f(s['bias'], 2)} | {_f(s['mean_score_se'], 2)} | {_f(s['seconds'], 1)} |",
              "",
              "*Stated probability*: the posterior probability of the overall level that the result "
              "states; *settled*: the share of results whose level rule is met (the test's own stopping "
              "threshold); the calibration plot compares stated probabilities with how often the level "
              "was right.",
              ""]  # fmt: skip
    if ref:
        full, oracle, same = (
            ref["full_bank"],
            ref["true_theta_selection"],
            ref["design_on_same_examinees"],
        )
        lines += [
            f"**Reference points** (first {ref['examinees']:,} simulees):",
            "",
            *_table(
                ["", "items", "level accuracy", "RMSE"],
                [
                    ["this design", _f(same["mean_items"], 2), _pct(same["level_accuracy"]), ""],
                    [
                        "all operational items",
                        str(full["items"]),
                        _pct(full["level_accuracy"]),
                        _f(full["rmse"], 2),
                    ],
                    [
                        "items chosen at the true θ",
                        _f(oracle["mean_items"], 2),
                        _pct(oracle["level_accuracy"]),
                        _f(oracle["rmse"], 2),
                    ],
                ],
            ),  # fmt: skip
            "",
            f"This design needs {_f(ref['length_vs_true_theta_selection'], 2)}× the length of true-θ "
            "selection and reaches "
            f"{_pct(ref['accuracy_vs_full_bank'])} of the full-bank level accuracy.",
            "",
        ]
    if "exposure_control" in s:
        ec = s["exposure_control"]
        lines += [f"Sympson–Hetter exposure control, target rate {ec['max_rate']}: highest exposure by iteration "
                  + " → ".join(_pct(x) for x in ec["max_exposure_by_iteration"]) + ".", ""]  # fmt: skip
    codes = sim.area_codes
    lines += ["**Per area**", ""]
    lines += _table(
        ["area", "items given", "θ RMSE", "θ bias", "area score RMSE", "area level accuracy"],
        [[_area_label(c, names, "en"), _f(s["area_items"][c], 2), _f(s["theta_rmse"][c], 3),
          _f(s["theta_bias"][c], 3), _f(s["area_rmse"][c], 2), _pct(s["area_level_accuracy"][c])]
         for c in codes],
    )  # fmt: skip
    length = s["length"]
    lines += [
        "",
        f"**Test length**: mean {_f(length['mean'], 1)} (SD {_f(length['sd'], 1)}), min {length['min']}, "
        f"10% {_f(length['p10'], 0)}, median {_f(length['median'], 0)}, 90% {_f(length['p90'], 0)}, "
        f"max {length['max']}. Stop reasons: "
        + "; ".join(
            f"{v / s['examinees']:.1%} {STOP_REASONS.get(k, {}).get('en', k or 'none')} ({k})".replace(
                "{threshold:.0%}", "the threshold"
            ).replace("{max_items}", str(result.design.config.max_items))
            for k, v in s["stop_reasons"].items()
        )
        + ".",
        "",
        f"**Exposure**: the most used item is given to {_pct(s['exposure_max'])} of simulees, the mean item to "
        f"{_pct(s['exposure_mean'])}; {s['unused_items']} operational items are never used; two simulees share "
        f"{_pct(s['overlap'])} of their items on average (test overlap).",
        "",
    ]
    calibration = s["probability_calibration"]
    lines += [
        "**Stated probability of the overall level against how often it was right** "
        "(bins of 0.05; n = results in the bin)",
        "",
    ]
    lines += _table(
        ["stated", "observed", "n"],
        [[_f(b["stated"], 3), _f(b["observed"], 3), f"{b['n']:,}"] for b in calibration],
    )
    lines.append("")
    confusion = np.array(s["level_confusion"]["counts"])
    names = [f"{lv.code} {lv.name_vi}" for lv in bank.scale.levels]
    lines += ["**Level confusion** (rows: true level, columns: estimated level; counts)", ""]
    lines += _table(["true \\ estimated", *names],
                    [[names[i], *[str(x) for x in confusion[i]]] for i in range(len(names))])  # fmt: skip
    lines.append("")
    files = {
        "conditional": "Bias and standard error across ability",
        "length": "Test length",
        "confusion": "Level confusion",
        "calibration": "Stated against observed probability of the level",
        "exposure": "Item exposure",
    }
    _plot_conditional(out / f"{prefix}conditional.png", sim, name)
    _plot_length(out / f"{prefix}length.png", sim, result.true_theta_selection, name)
    _plot_confusion(out / f"{prefix}confusion.png", confusion, name, bank.scale)
    _plot_calibration(out / f"{prefix}calibration.png", calibration, name)
    _plot_exposure(out / f"{prefix}exposure.png", bank, sim, s.get("exposure_control"), name)
    for key, title in files.items():
        lines += [f"![{title}]({prefix}{key}.png)", ""]
    return lines


# ---------------------------------------------------------------- planners
#: What each stop reason means, for people who do not read the engine's code.
STOP_REASONS = {
    "level_probable": {
        "vi": "bài đã đủ chắc về mức chung (xác suất đúng mức từ {threshold:.0%} trở lên)",
        "en": "the test was sure enough of the overall level (probability of the right level "
        "{threshold:.0%} or more)",
    },
    "level_decided": {
        "vi": "khoảng tin cậy của điểm chung đã nằm gọn trong một mức",
        "en": "the confidence interval of the overall score lay inside one level",
    },
    "overall_se": {
        "vi": "điểm chung đã đủ chính xác (sai số chuẩn đạt ngưỡng)",
        "en": "the overall score was precise enough (its standard error reached the target)",
    },
    "area_se": {
        "vi": "điểm của mọi lĩnh vực đã đủ chính xác",
        "en": "every area's score was precise enough",
    },
    "theta_se": {
        "vi": "năng lực đã được ước lượng đủ chính xác",
        "en": "the ability was estimated precisely enough",
    },
    "max_items": {
        "vi": "đã hỏi đủ số câu tối đa ({max_items} câu) mà vẫn chưa chắc về mức",
        "en": "the test reached its maximum of {max_items} questions before it was sure",
    },
    "no_item_left": {
        "vi": "không còn câu hỏi nào giúp đo thêm",
        "en": "no question that would still tell something was left",
    },
}


def _vi_number(value: float, digits: int = 1) -> str:
    """A number as Vietnamese writes it: 1.234,5."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")


def _vi_int(value: int) -> str:
    return _vi_number(value, 0)


def _vi_pct(value: float, digits: int = 1) -> str:
    return f"{_vi_number(100 * value, digits)}%"


def _area_label(code: str, names: dict, language: str) -> str:
    name = (names.get(code) or {}).get(language)
    return (
        f"{code} · {name}" if name else f"area {code}" if language == "en" else f"lĩnh vực {code}"
    )


def _wilson(share: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a share measured on ``n`` simulees."""
    z = 1.959963984540054
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def planner_summary(result: DesignResult, context: dict) -> list[str]:
    """The report's opening for planners: plain sentences in Vietnamese and English.

    What the figures mean for a city that runs the test: how often the level
    a citizen is told is right (with its 95% interval for this many
    simulees), how long the test is, why tests stop (in words), how much any
    one question is exposed, and which areas are measured least well (by
    name).
    """
    s = result.summary
    n = int(s["examinees"])
    config = result.design.config
    scale = result.result.scores.scale
    names = context.get("bank", {}).get("area_names", {})
    accuracy = float(s["level_accuracy"])
    low, high = _wilson(accuracy, n)
    threshold = next(
        (
            getattr(rule, "threshold", None)
            for rule in config.stopping
            if hasattr(rule, "threshold")
        ),
        0.9,
    )
    reasons = sorted(s["stop_reasons"].items(), key=lambda kv: -kv[1])
    length = s["length"]
    area_accuracy = s["area_level_accuracy"]
    weakest = min(area_accuracy, key=lambda c: area_accuracy[c])
    strongest = max(area_accuracy, key=lambda c: area_accuracy[c])
    exposure, unused = float(s["exposure_max"]), int(s["unused_items"])
    operational = int(context.get("bank", {}).get("operational") or 0)

    def reason_text(code: str, language: str) -> str:
        template = STOP_REASONS.get(code, {}).get(language)
        if template is None:
            return code or ("không rõ" if language == "vi" else "unknown")
        return template.format(threshold=threshold or 0.9, max_items=config.max_items)

    def reasons_in(language: str) -> str:
        share = (lambda x: _vi_pct(x, 0)) if language == "vi" else (lambda x: f"{x:.0%}")
        return "; ".join(f"{share(v / n)}: {reason_text(k, language)}" for k, v in reasons)

    vi = [
        "## Tóm tắt cho người lập kế hoạch",
        "",
        f"- **Độ chính xác về mức.** Trong {_vi_int(n)} người làm bài mô phỏng, "
        f"{_vi_pct(accuracy)} được báo đúng mức chung của mình ({_level_names(scale, 'vi')}). Với chừng ấy người, con số thật nằm trong khoảng {_vi_pct(low)}–"
        f"{_vi_pct(high)} (khoảng tin cậy 95%); muốn khoảng hẹp hơn thì mô phỏng nhiều người hơn. "
        "Người bị báo sai thường chỉ lệch sang mức liền kề, và thường là người có điểm sát ranh "
        "giới giữa hai mức.",
        f"- **Độ dài bài.** Trung bình {_vi_number(length['mean'])} câu; một nửa số người xong "
        f"trong {length['median']:.0f} câu; nhiều nhất {length['max']} câu.",
        f"- **Vì sao bài dừng.** {reasons_in('vi')}.",
        f"- **Lĩnh vực.** Mức của từng lĩnh vực đúng cho {_vi_pct(area_accuracy[strongest], 0)} "
        f"số người ở lĩnh vực {_area_label(strongest, names, 'vi')} nhưng chỉ "
        f"{_vi_pct(area_accuracy[weakest], 0)} ở lĩnh vực {_area_label(weakest, names, 'vi')}: "
        "bài ngắn đo mức chung tốt hơn mức từng lĩnh vực, vì mỗi lĩnh vực chỉ được hỏi vài câu.",
        f"- **Mức độ lộ câu hỏi.** Câu được dùng nhiều nhất xuất hiện với {_vi_pct(exposure, 0)} "
        "số người làm bài. Câu hỏi gặp quá nhiều người dễ bị truyền tai nhau, làm kết quả kém "
        "tin cậy; "
        + (
            f"{unused} trong {operational} câu không bao giờ được dùng."
            if operational
            else f"{unused} câu không bao giờ được dùng."
        ),
        "",
    ]
    en = [
        "## Summary for planners",
        "",
        f"- **Level accuracy.** Of {n:,} simulated test takers, {accuracy:.1%} were told their "
        f"right overall level ({_level_names(scale, 'en')}). With this many "
        f"simulees the true figure lies between {low:.1%} and {high:.1%} (95% interval); simulate "
        "more people for a narrower one. Those told a wrong level are nearly always one level off, "
        "and close to the boundary between the two.",
        f"- **Test length.** {length['mean']:.1f} questions on average; half finish within "
        f"{length['median']:.0f}; at most {length['max']}.",
        f"- **Why tests stop.** {reasons_in('en')}.",
        f"- **Areas.** Each area's own level is right for {area_accuracy[strongest]:.0%} of people "
        f"in {_area_label(strongest, names, 'en')} but only {area_accuracy[weakest]:.0%} in "
        f"{_area_label(weakest, names, 'en')}: a short test places the overall level better than "
        "each area's, as each area gets only a few questions.",
        f"- **Exposure.** The most used question is shown to {exposure:.0%} of test takers. "
        "Questions that many people see get passed around, which makes results less "
        "trustworthy; "
        + (
            f"{unused} of {operational} questions are never used."
            if operational
            else f"{unused} questions are never used."
        ),
        "",
    ]
    return vi + en


# --------------------------------------------------------------------- plots
def _binned(x: np.ndarray, y: np.ndarray, edges: np.ndarray, minimum: int = 20):
    """Centres, mean and SD of ``y`` in bins of ``x`` with at least ``minimum`` points."""
    which = np.digitize(x, edges) - 1
    centres, means, sds = [], [], []
    for k in range(len(edges) - 1):
        inside = which == k
        if inside.sum() >= minimum:
            centres.append(0.5 * (edges[k] + edges[k + 1]))
            means.append(float(y[inside].mean()))
            sds.append(float(y[inside].std()))
    return np.array(centres), np.array(means), np.array(sds)


def _plot_conditional(path: Path, sim, name: str) -> None:
    """The figures of :func:`nangluc.simulations.core.conditional_accuracy` as plots."""
    import matplotlib.pyplot as plt

    figures = conditional_accuracy(sim)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = figures["overall_score"]
    x = [0.5 * (r["low"] + r["high"]) for r in rows]
    left.axhline(0, color="0.6", lw=0.8)
    left.plot(x, [r["bias"] for r in rows], "o-", label="bias (mean error)")
    left.plot(x, [r["se"] for r in rows], "s-", label="standard error (SD of error)")
    left.plot(x, [r["mean_reported_se"] for r in rows], "--", label="reported SE (mean)")
    for lv in sim.scores.scale.levels[1:]:
        left.axvline(lv.lower, color="0.85", lw=0.8, zorder=0)
    left.set(xlabel="true overall score", ylabel="points", title="Overall score", xlim=(0, 100))
    left.legend(fontsize=8)
    for code, rows in figures["theta"].items():
        tx = [0.5 * (r["low"] + r["high"]) for r in rows]
        line = right.plot(tx, [r["se"] for r in rows], "-", label=f"area {code} SE")[0]
        right.plot(tx, [r["bias"] for r in rows], ":", color=line.get_color())
    right.axhline(0, color="0.6", lw=0.8)
    right.set(
        xlabel="true θ of the area", ylabel="θ units", title="Area θ: SE (solid), bias (dotted)"
    )
    right.legend(fontsize=8, ncol=2)
    fig.suptitle(f"{name}: conditional bias and standard error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_length(path: Path, sim, oracle, name: str) -> None:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    top = int(max(sim.length.max(), oracle.length.max() if oracle is not None else 0))
    bins = np.arange(-0.5, top + 1.5, 1.0)
    left.hist(
        sim.length,
        bins=bins,
        density=True,
        alpha=0.75,
        label=f"{name} (mean {sim.length.mean():.1f})",
    )
    if oracle is not None:
        left.hist(oracle.length, bins=bins, density=True, histtype="step", lw=1.5, color="k",
                  label=f"items chosen at the true θ (mean {oracle.length.mean():.1f})")  # fmt: skip
    left.set(xlabel="scored items", ylabel="share of simulees", title="Test length")
    left.legend(fontsize=8)
    x, mean_length, _ = _binned(
        sim.true_scores.overall_score, sim.length.astype(float), np.arange(0, 105, 5.0)
    )
    right.plot(x, mean_length, "o-")
    for lv in sim.scores.scale.levels[1:]:
        right.axvline(lv.lower, color="0.85", lw=0.8, zorder=0)
    right.set(
        xlabel="true overall score",
        ylabel="mean scored items",
        title="Length by ability",
        xlim=(0, 100),
    )
    fig.suptitle(f"{name}: test length")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_confusion(path: Path, confusion: np.ndarray, name: str, scale: Scale) -> None:
    import matplotlib.pyplot as plt

    share = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = [f"{lv.code} {lv.name_vi}" for lv in scale.levels]
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            if confusion[i, j]:
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, f"{share[i, j]:.0%}\n({confusion[i, j]:,})", ha="center", va="center",
                        fontsize=8, color=colour)  # fmt: skip
    ax.set(
        xlabel="estimated level", ylabel="true level", title=f"{name}: level confusion (row shares)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_exposure(
    path: Path, bank: ItemBank, sim, exposure_control: dict | None, name: str
) -> None:
    import matplotlib.pyplot as plt

    order = np.argsort(-sim.exposure, kind="stable")
    fig, ax = plt.subplots(figsize=(11, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    area = bank.area[order]
    ax.bar(np.arange(bank.n_items), sim.exposure[order], width=1.0,
           color=[colours[a % len(colours)] for a in area])  # fmt: skip
    for a, code in enumerate(bank.area_codes):
        ax.bar([0], [0], color=colours[a % len(colours)], label=f"area {code}")
    if exposure_control:
        ax.axhline(
            exposure_control["max_rate"], color="k", ls="--", lw=1, label="Sympson–Hetter target"
        )
    ax.set(xlabel="items, most used first", ylabel="exposure rate", ylim=(0, 1.02), xlim=(-1, bank.n_items),
           title=f"{name}: item exposure (max {sim.exposure.max():.0%})")  # fmt: skip
    ax.legend(fontsize=8, ncol=min(6, bank.n_areas + 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_comparison(path: Path, results: Sequence[DesignResult]) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    for r in results:
        s = r.summary
        point = ax.plot(s["mean_items"], s["level_accuracy"], "o", ms=8)[0]
        ax.annotate(r.design.name, (s["mean_items"], s["level_accuracy"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)  # fmt: skip
        ref = s.get("references")
        if ref:
            ax.plot(
                ref["true_theta_selection"]["mean_items"],
                ref["true_theta_selection"]["level_accuracy"],
                "x",
                color=point.get_color(),
            )
            ax.axhline(ref["full_bank"]["level_accuracy"], color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="mean scored items", ylabel="overall level accuracy",
           title="Designs: length against accuracy (x = items chosen at the true θ; dotted = all items)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------- helpers
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _plot_calibration(path: Path, calibration: list[dict], name: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, label="stated = observed")
    ax.fill_between([0, 1], [-0.03, 0.97], [0.03, 1.03], color="0.9", label="±0.03")
    stated = [b["stated"] for b in calibration]
    observed = [b["observed"] for b in calibration]
    sizes = [max(8.0, min(200.0, b["n"] / 20)) for b in calibration]
    ax.scatter(stated, observed, s=sizes, zorder=3, label="bins of 0.05 (area ~ n)")
    ax.set(
        xlabel="stated probability of the overall level",
        ylabel="share whose level was right",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        title=f"{name}: probability calibration",
    )
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(value, digits: int, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _band(level, scale: Scale) -> str:
    if level == scale.levels[0]:
        return f"< {level.upper:g}"
    if level == scale.levels[-1]:
        return f"≥ {level.lower:g}"
    return f"{level.lower:g}–{level.upper:g}"


def _overall_text(scale: Scale) -> str:
    if scale.weights is None:
        return "mean of the area domain scores"
    weights = ", ".join(f"area {code} × {weight:g}" for code, weight in scale.weights)
    return f"weighted mean of the area domain scores: {weights}"


def _level_names(scale: Scale, language: str) -> str:
    """The levels' names as a list in words: "A, B, C or D" ("A, B, C hay D")."""
    names = [lv.name(language) for lv in scale.levels]
    last = " hay " if language == "vi" else " or "
    return ", ".join(names[:-1]) + last + names[-1]


def _population_text(pop: dict) -> str:
    if pop.get("source") == "normal":
        return (
            f"{pop['examinees']:,} drawn from a multivariate normal (mean 0, SD 1, inter-area correlation "
            f"{pop['correlation']})"
        )
    return f"{pop.get('examinees', 0):,} read from {pop.get('source')}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "design"
