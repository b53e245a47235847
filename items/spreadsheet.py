"""The bank as a spreadsheet (CSV) that a content team edits.

One row per item. Columns, in this order::

    id, area, competence, ksa, model, level, status, a, b, c, thresholds, key,
    text_vi, text_en, goal_vi, goal_en, basic_skills,
    option1_vi, option1_en, …, optionN_vi, optionN_en
    [, se_a, se_b, se_c, se_thresholds]   (only when some item has standard errors)

* ``thresholds`` are separated by semicolons: ``-1.0;0.1;1.2``; so are the
  codes in ``basic_skills``: ``online-shopping;online-payment``;
* ``goal_vi``/``goal_en`` state the criterion as a learning goal (what the
  result page names as a next step);
* ``key`` is the **number of the correct option column** (1 = option1), as a
  content editor reads the sheet; the JSON file stores it 0-based;
* empty cells mean "not given".

Files are UTF-8 with a byte-order mark so that Excel shows Vietnamese
correctly; on import the mark is optional and a semicolon-separated file
(what Excel writes in a Vietnamese locale) is recognised too.

Export then import gives back the same bank, and import then export gives
back the same CSV (for CSVs written by :func:`bank_to_csv`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nangluc.items.bank import (
    BankDocument,
    BankError,
    ItemRecord,
    Problem,
    atomic_write,
    bank_from_dict,
    new_version,
    nfc,
)
from nangluc.items.provisional import parameter_source, provisional_parameters
from nangluc.items.schema import POLYTOMOUS, validate_document

BOM = "\ufeff"
BASE_COLUMNS = (
    "id",
    "area",
    "competence",
    "ksa",
    "model",
    "level",
    "status",
    "a",
    "b",
    "c",
    "thresholds",
    "key",
)
TEXT_COLUMNS = ("text_vi", "text_en")
#: Content a text import may change besides text, options and key.
CONTENT_COLUMNS = ("goal_vi", "goal_en", "basic_skills")
SE_COLUMNS = ("se_a", "se_b", "se_c", "se_thresholds")
PARAMETER_COLUMNS = (
    "area",
    "competence",
    "ksa",
    "model",
    "level",
    "status",
    "a",
    "b",
    "c",
    "thresholds",
)
_OPTION_RE = re.compile(r"^option([1-9][0-9]*)_(vi|en)$")


def _fmt(x: float | int | None) -> str:
    """A number as the shortest text that reads back to the same float."""
    if x is None:
        return ""
    return repr(x) if isinstance(x, float) else str(x)


def _fmt_list(values: Any) -> str:
    if values is None:
        return ""
    return ";".join(_fmt(v) for v in values)


def columns_for(items: tuple[ItemRecord, ...] | list[ItemRecord]) -> list[str]:
    """The header of a bank's CSV: option columns up to the most options of any item."""
    n_options = max((len(i.options) for i in items), default=0)
    header = list(BASE_COLUMNS) + list(TEXT_COLUMNS) + list(CONTENT_COLUMNS)
    for k in range(1, n_options + 1):
        header += [f"option{k}_vi", f"option{k}_en"]
    if any(i.se is not None for i in items):
        header += list(SE_COLUMNS)
    return header


def item_row(item: ItemRecord) -> dict[str, str]:
    """One item as a CSV row (column -> cell text)."""
    row = {
        "id": item.id,
        "area": item.area,
        "competence": item.competence or "",
        "ksa": item.ksa or "",
        "model": item.model,
        "level": _fmt(item.level),
        "status": item.status,
        "a": _fmt(item.a),
        "b": _fmt(item.b),
        "c": _fmt(item.c),
        "thresholds": _fmt_list(item.thresholds) if item.model in POLYTOMOUS else "",
        "key": "" if item.key is None else str(item.key + 1),
        "text_vi": item.text["vi"] if item.text else "",
        "text_en": item.text.get("en", "") if item.text else "",
        "goal_vi": item.goal["vi"] if item.goal else "",
        "goal_en": item.goal.get("en", "") if item.goal else "",
        "basic_skills": ";".join(item.basic_skills),
    }
    for k, option in enumerate(item.options, start=1):
        row[f"option{k}_vi"] = option["vi"]
        row[f"option{k}_en"] = option.get("en", "")
    if item.se is not None:
        for key in ("a", "b", "c"):
            row[f"se_{key}"] = _fmt(item.se.get(key)) if key in item.se else ""
        row["se_thresholds"] = _fmt_list(item.se.get("thresholds"))
    return row


def bank_to_csv(doc: BankDocument) -> str:
    """The bank's items as CSV text (starting with a byte-order mark)."""
    header = columns_for(doc.items)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\r\n")
    writer.writeheader()
    for item in doc.items:
        writer.writerow(item_row(item))
    return BOM + buffer.getvalue()


def write_csv(doc: BankDocument, path: str | Path) -> None:
    """Write :func:`bank_to_csv` to ``path`` (bytes as is, CRLF line ends as Excel expects)."""
    atomic_write(path, bank_to_csv(doc).encode("utf-8"))


# --------------------------------------------------------------------------- reading
def decode_csv(data: bytes, name: str = "the CSV file") -> str:
    """CSV bytes as text; a clear error if they are not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BankError(
            [
                Problem(
                    None,
                    f"{name} is not UTF-8 (byte {exc.start}); in Excel use Save As → 'CSV UTF-8'",
                )
            ],
            what=name,
        ) from None


def read_rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(row number, {column: cell})`` of CSV text; row 1 is the header.

    Blank lines are skipped. Cells are stripped of surrounding spaces and
    normalised to NFC.
    """
    text = text.removeprefix(BOM)
    first_line = text.split("\n", 1)[0]
    # Excel in a Vietnamese (comma-decimal) locale separates fields with semicolons.
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [nfc(h.strip()) for h in next(reader)]
    except StopIteration:
        raise BankError([Problem(None, "the CSV file is empty")], what="the CSV file") from None
    except csv.Error as exc:
        raise BankError(
            [Problem(None, f"the CSV header cannot be read: {exc}")], what="the CSV file"
        ) from None
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[Problem] = []
    try:
        for values in reader:
            number = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
                problems.append(
                    Problem(
                        None,
                        f"has {len(values)} cells but the header has {len(header)}",
                        row=number,
                    )
                )
            cells = {h: nfc(v.strip()) for h, v in zip(header, values, strict=False)}
            rows.append((number, cells))
    except csv.Error as exc:
        problems.append(Problem(None, f"cannot be read: {exc}", row=reader.line_num))
    if problems:
        raise BankError(problems, what="the CSV file")
    return header, rows


def _header_problems(header: list[str], required: tuple[str, ...]) -> list[Problem]:
    problems = []
    known = set(BASE_COLUMNS) | set(TEXT_COLUMNS) | set(CONTENT_COLUMNS) | set(SE_COLUMNS)
    seen: set[str] = set()
    for column in header:
        if column in seen:
            problems.append(Problem(None, f"column {column!r} appears twice", row=1))
        seen.add(column)
        if column not in known and not _OPTION_RE.match(column):
            problems.append(Problem(None, f"unknown column {column!r}", row=1))
    for column in required:
        if column not in header:
            problems.append(Problem(None, f"column {column!r} is missing", row=1))
    return problems


def _number(cell: str, name: str, errors: list[str]) -> float | None:
    if cell == "":
        return None
    try:
        value = float(cell)
    except ValueError:
        hint = " (use a dot as the decimal separator)" if re.fullmatch(r"-?\d+,\d+", cell) else ""
        errors.append(f"{name} must be a number (got {cell!r}){hint}")
        return None
    if not math.isfinite(value):
        errors.append(f"{name} must be a finite number (got {cell!r})")
        return None
    return value


def _integer(cell: str, name: str, errors: list[str]) -> int | None:
    if cell == "":
        return None
    try:
        return int(cell)
    except ValueError:
        errors.append(f"{name} must be a whole number (got {cell!r})")
        return None


def _numbers(cell: str, name: str, errors: list[str]) -> list[float] | None:
    if cell == "":
        return None
    out = []
    for part in cell.split(";"):
        value = _number(part.strip(), name, errors)
        if value is None:
            if part.strip() == "":
                errors.append(
                    f"{name} has an empty entry (separate numbers with ';', e.g. -1.0;0.1;1.2)"
                )
            return None
        out.append(value)
    return out


def _option_count(header: list[str]) -> int:
    numbers = [int(m.group(1)) for h in header if (m := _OPTION_RE.match(h))]
    return max(numbers, default=0)


def _content_from_row(
    cells: Mapping[str, str], n_option_columns: int, errors: list[str]
) -> dict[str, Any]:
    """text, goal, basic skills, options and key of one row (the fields whose columns are present)."""
    out: dict[str, Any] = {}
    if "text_vi" in cells or "text_en" in cells:
        vi, en = cells.get("text_vi", ""), cells.get("text_en", "")
        if vi or en:
            out["text"] = {"vi": vi, **({"en": en} if en else {})}
    if "goal_vi" in cells or "goal_en" in cells:
        vi, en = cells.get("goal_vi", ""), cells.get("goal_en", "")
        if vi or en:
            out["goal"] = {"vi": vi, **({"en": en} if en else {})}
    if cells.get("basic_skills", ""):
        out["basic_skills"] = [code.strip() for code in cells["basic_skills"].split(";")]
    if n_option_columns:
        options: list[dict[str, str]] = []
        gap: int | None = None
        for k in range(1, n_option_columns + 1):
            vi, en = cells.get(f"option{k}_vi", ""), cells.get(f"option{k}_en", "")
            if not vi and not en:
                gap = gap or k
                continue
            if gap is not None:
                errors.append(
                    f"option {gap} is empty but option {k} is filled (options must be consecutive)"
                )
                gap = None
            options.append({"vi": vi, **({"en": en} if en else {})})
        if options:
            out["options"] = options
    if "key" in cells:
        key = _integer(cells["key"], "key", errors)
        if key is not None:
            if key < 1:
                errors.append(
                    f"key is the number of the correct option column, 1 or more (got {key})"
                )
            else:
                out["key"] = key - 1
    return out


def _item_from_row(
    cells: Mapping[str, str], n_option_columns: int, errors: list[str]
) -> dict[str, Any]:
    """A bank item object from one full CSV row (no validation beyond cell syntax)."""
    item: dict[str, Any] = {"id": cells.get("id", "")}
    for column in ("area", "competence", "ksa", "model", "status"):
        if cells.get(column, ""):
            item[column] = cells[column]
    level = _integer(cells.get("level", ""), "level", errors)
    if level is not None:
        item["level"] = level
    for column in ("a", "b", "c"):
        value = _number(cells.get(column, ""), column, errors)
        if value is not None:
            item[column] = value
    thresholds = _numbers(cells.get("thresholds", ""), "thresholds", errors)
    if thresholds is not None:
        item["thresholds"] = thresholds
    item.update(_content_from_row(cells, n_option_columns, errors))
    if any(cells.get(c, "") for c in SE_COLUMNS):
        se: dict[str, Any] = {}
        for key in ("a", "b", "c"):
            value = _number(cells.get(f"se_{key}", ""), f"se_{key}", errors)
            if value is not None:
                se[key] = value
        ses = _numbers(cells.get("se_thresholds", ""), "se_thresholds", errors)
        if ses is not None:
            se["thresholds"] = ses
        item["se"] = se
    return item


def _locate(
    problems: list[Problem], rows_by_id: Mapping[str, list[int]], skip_rows: set[int] = frozenset()
) -> list[Problem]:
    """Bank problems with the spreadsheet row of their item.

    Rows in ``skip_rows`` already have cell errors (an unreadable number, say);
    what the bank check says about them would only repeat those, so it is left out.
    """
    out = []
    for p in problems:
        rows = rows_by_id.get(p.item_id or "", [])
        if p.message.startswith("duplicate id") and len(rows) > 1:
            out += [
                Problem(p.item_id, f"duplicate id (also row {rows[0]})", row=r) for r in rows[1:]
            ]
        elif not (rows and rows[0] in skip_rows):
            out.append(Problem(p.item_id, p.message, row=rows[0] if rows else None))
    return out


def items_from_csv(
    text: str, *, framework: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Bank item objects from a full CSV (every item with its parameters).

    Parameters
    ----------
    text : str
        The CSV text (a byte-order mark is allowed).
    framework : mapping, optional
        The framework object the items must fit (area/competence codes).

    Raises
    ------
    BankError
        With every problem, each naming its row number and item id.
    """
    header, rows = read_rows(text)
    problems = _header_problems(header, ("id", "area", "model", "a"))
    if problems:
        raise BankError(problems, what="the CSV file")
    n_option_columns = _option_count(header)
    items: list[dict[str, Any]] = []
    rows_by_id: dict[str, list[int]] = {}
    for number, cells in rows:
        errors: list[str] = []
        item = _item_from_row(cells, n_option_columns, errors)
        item_id = item["id"] or None
        problems += [Problem(item_id, e, row=number) for e in errors]
        if not item_id:
            problems.append(Problem(None, "id is empty", row=number))
            continue
        rows_by_id.setdefault(item_id, []).append(number)
        items.append(item)
    if not rows:
        problems.append(Problem(None, "the CSV file has no item rows"))
    document: dict[str, Any] = {"items": items}
    if framework is not None:
        document["framework"] = dict(framework)
    problems += _locate(validate_document(document), rows_by_id, {p.row for p in problems if p.row})
    if problems:
        raise BankError(sorted(problems, key=_order), what="the CSV file")
    return items


def bank_from_csv(text: str, base: BankDocument) -> BankDocument:
    """The bank ``base`` with its items replaced by those of a full CSV (same version fields).

    This is the inverse of :func:`bank_to_csv`: ``bank_from_csv(bank_to_csv(doc), doc) == doc``.
    Use :func:`import_csv` to publish the result as a new version.
    """
    framework = base.framework.to_dict() if base.framework is not None else None
    items = items_from_csv(text, framework=framework)
    return bank_from_dict({**base.to_dict(), "items": items})


def import_csv(
    text: str,
    base: BankDocument,
    *,
    version: str,
    mode: str = "text",
    source_name: str | None = None,
) -> tuple[BankDocument, list[str]]:
    """A new version of ``base`` with the content of a spreadsheet.

    Parameters
    ----------
    text : str
        CSV text.
    base : BankDocument
        The bank the new version derives from (its framework is kept).
    version : str
        The new version id (its parent is ``base.version``).
    mode : {"text", "full"}
        ``text``: replace the text, options and key of the items in the CSV,
        keeping their parameters (the official wording replacing ours); cells
        of other columns must agree with the base, and items absent from the
        CSV stay as they are. ``full``: the CSV is the complete item list;
        rows with no model and no parameters get provisional parameters from
        their ksa and level (:mod:`nangluc.items.provisional`), other rows keep theirs.
    source_name : str, optional
        Recorded in the new version's metadata.

    Returns
    -------
    (BankDocument, list of str)
        The new version and notes for the user (what changed).

    Raises
    ------
    BankError
        With every problem, each with its row number and item id.
    """
    if mode not in ("text", "full"):
        raise ValueError(f"mode must be 'text' or 'full' (got {mode!r})")
    header, rows = read_rows(text)
    # The provisional rule places items by the base framework's own levels.
    level_codes = (
        [band.code for band in base.framework.levels]
        if base.framework is not None and base.framework.levels
        else None
    )
    required = ("id",) if mode == "text" else ("id", "area")
    problems = _header_problems(header, required)
    if problems:
        raise BankError(problems, what="the CSV file")
    n_option_columns = _option_count(header)
    notes: list[str] = []
    rows_by_id: dict[str, list[int]] = {}
    new_items: list[dict[str, Any]] = []
    provisional_count = 0
    if mode == "text":
        replaced: dict[str, dict[str, Any]] = {}
        for number, cells in rows:
            errors: list[str] = []
            item_id = cells.get("id", "")
            if not item_id:
                problems.append(Problem(None, "id is empty", row=number))
                continue
            if item_id not in base:
                problems.append(
                    Problem(
                        item_id,
                        f"is not in bank {base.version} (use --mode full to add items)",
                        row=number,
                    )
                )
                continue
            if item_id in replaced:
                problems.append(
                    Problem(
                        item_id, f"duplicate id (also row {rows_by_id[item_id][0]})", row=number
                    )
                )
                continue
            rows_by_id.setdefault(item_id, []).append(number)
            current = base.item(item_id)
            reference = item_row(current)
            for column in PARAMETER_COLUMNS:
                cell = cells.get(column, "")
                if cell and not _same_cell(column, cell, reference[column]):
                    errors.append(
                        f"{column} is {cell!r} but bank {base.version} has {reference[column]!r}; this import "
                        "replaces text only (parameters come from calibration; use --mode full to change them)"
                    )
            content = _content_from_row(cells, n_option_columns, errors)
            problems += [Problem(item_id, e, row=number) for e in errors]
            item = current.to_dict()
            if "text_vi" in header or "text_en" in header:
                item.pop("text", None)
            if n_option_columns:
                item.pop("options", None)
            if "key" in header:
                item.pop("key", None)
            if "goal_vi" in header or "goal_en" in header:
                item.pop("goal", None)
            if "basic_skills" in header:
                item.pop("basic_skills", None)
            item.update(content)
            replaced[item_id] = item
        new_items = [replaced.get(i.id, i.to_dict()) for i in base.items]
        changed = sum(replaced[i] != base.item(i).to_dict() for i in replaced)
        notes.append(
            f"{changed} of {len(replaced)} items in the CSV have new text; {len(base) - len(replaced)} items not in the CSV are unchanged"
        )
    else:
        for number, cells in rows:
            errors = []
            item = _item_from_row(cells, n_option_columns, errors)
            item_id = item["id"] or None
            if not item_id:
                problems.append(Problem(None, "id is empty", row=number))
                continue
            rows_by_id.setdefault(item_id, []).append(number)
            if not any(cells.get(c, "") for c in ("model", "a", "b", "c", "thresholds")):
                try:
                    item.update(provisional_parameters(item, levels=level_codes))
                    provisional_count += 1
                except ValueError as exc:
                    errors.append(
                        f"has no parameters and the provisional rule cannot give them: {exc}"
                    )
            problems += [Problem(item_id, e, row=number) for e in errors]
            new_items.append(item)
        kept = len(new_items) - provisional_count
        notes.append(
            f"{len(new_items)} items: {kept} with their own parameters, {provisional_count} with provisional ones"
        )
    if not rows:
        problems.append(Problem(None, "the CSV file has no item rows"))
    framework = base.framework.to_dict() if base.framework is not None else None
    document = {"items": new_items, **({"framework": framework} if framework is not None else {})}
    problems += _locate(
        validate_document(nfc(document)), rows_by_id, {p.row for p in problems if p.row}
    )
    if problems:
        raise BankError(sorted(problems, key=_order), what="the CSV file")
    metadata: dict[str, Any] = {
        "imported_from": {"file": source_name or "CSV", "mode": mode, "rows": len(rows)}
    }
    status = None
    if provisional_count:
        metadata["parameter_source"] = parameter_source(levels=level_codes)
        status = "provisional"
    try:
        doc = new_version(base, version=version, items=new_items, status=status, metadata=metadata)
    except BankError as exc:
        raise BankError(_locate(list(exc.problems), rows_by_id), what="the new version") from None
    return doc, notes


def _order(problem: Problem) -> tuple[int, int]:
    """Problems sorted by row; those of no row (the whole file) last."""
    return (problem.row if problem.row is not None else 1 << 30, 0)


def _same_cell(column: str, cell: str, reference: str) -> bool:
    """Whether a cell says the same as the base bank's cell (numbers compared as numbers)."""
    if column in ("a", "b", "c", "level"):
        try:
            return reference != "" and float(cell) == float(reference)
        except ValueError:
            return False
    if column == "thresholds":
        try:
            return reference != "" and [float(x) for x in cell.split(";")] == [
                float(x) for x in reference.split(";")
            ]
        except ValueError:
            return False
    return cell == reference
