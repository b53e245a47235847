"""Paper forms and surveys: response CSV files read against a bank, then scored in bulk.

``nangluc score`` reads what a community team typed in, in one of two layouts
(UTF-8, a header row, one file):

**Long** (the calibration input, DESIGN §3, and the service's
``responses.csv`` export): one row per answer, ``respondent_id,item_id`` and
either

- ``response``: the scored category (0/1 for a keyed item, 0..m-1 for a
  graded one), as calibration reads it; or
- ``option``: the chosen option's index, 0-based, as the API's answers take it
  (a keyed item is then scored with its key).

When both columns are there (an export) ``response`` is used. Other columns
(``ward``, ``age_group`` …) are ignored.

**Wide** (one row per person, as a paper form is typed into a spreadsheet):
``respondent_id`` and one column per item id; each cell is the letter of the
option circled on the paper (``A`` is the first option, case does not
matter), or empty when the question was not answered.

Every row is checked before anything is scored; each problem is reported with
its line number (the header is line 1) and what is wrong.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from nangluc.items.bank import BankDocument

#: Most problems listed before "and N more".
MAX_LISTED = 50
ID_COLUMN = "respondent_id"
LONG_COLUMNS = ("item_id",)


class FormError(ValueError):
    """A response file that cannot be scored; ``problems`` lists each, with its line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class FormFileError(FormError):
    """The file cannot be read at all (missing, not UTF-8 text, no usable header)."""


@dataclass(frozen=True)
class Pattern:
    """One respondent's answers, as (item id, scored category), in file order."""

    respondent_id: str
    answers: tuple[tuple[str, int], ...]
    line: int  # where the respondent first appears


def read_forms(
    source: str | Path,
    bank: BankDocument,
    *,
    items: Collection[str] | None = None,
    scope: str | None = None,
) -> list[Pattern]:
    """Read a long or wide response file and score each answer with ``bank``'s keys.

    Parameters
    ----------
    source : str or Path
        The CSV file.
    bank : BankDocument
        Item ids must be in it; options and categories are checked against it.
    items : collection of str, optional
        The items the test takes (its areas, or a fixed form's items); others
        are refused as unknown. Default: every item of ``bank``.
    scope : str, optional
        How messages name the test (``test NAME (bank V)``); default ``bank V``.

    Returns
    -------
    list of Pattern
        Respondents in order of first appearance.

    Raises
    ------
    FormFileError
        The file is missing, not UTF-8, empty, or has no ``respondent_id`` column.
    FormError
        Listing every bad row: an empty respondent id, an unknown item, a
        value that is not a whole number (or an option letter), out of the
        item's range, or an item answered twice by one respondent.
    """
    path = Path(source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FormFileError([f"response file not found: {path}"]) from None
    except OSError as error:
        raise FormFileError([f"cannot read {path}: {error.strerror or error}"]) from None
    if b"\x00" in raw[:65536]:
        raise FormFileError([f"{path} is not a CSV text file (it contains binary data)"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FormFileError([f"{path} is not UTF-8 text (byte {error.start})"]) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None or not any(cell.strip() for cell in header):
        raise FormFileError([f"{path} is empty: expected a header row"])
    header = [cell.strip() for cell in header]
    if ID_COLUMN not in header:
        raise FormFileError(
            [
                f"line 1: no {ID_COLUMN} column (found {', '.join(header)[:120]}); expected "
                "respondent_id,item_id,response (or option), or respondent_id and one column per item"
            ]
        )
    allowed = frozenset(items) if items is not None else frozenset(r.id for r in bank.items)
    where = scope or f"bank {bank.version}"
    if "item_id" in header:
        return _read_long(rows, header, bank, allowed, where)
    return _read_wide(rows, header, bank, allowed, where)


def _read_long(
    rows, header: list[str], bank: BankDocument, allowed: frozenset[str], where: str
) -> list[Pattern]:
    if "response" in header:
        value_column, as_option = "response", False
    elif "option" in header:
        value_column, as_option = "option", True
    else:
        raise FormFileError(
            ["line 1: a long file needs a response column (scored category) or an option column"]
        )
    who, what, value = (header.index(c) for c in (ID_COLUMN, "item_id", value_column))
    collector = _Collector(bank, allowed, where)
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(header):
            collector.problem(line, f"{len(row)} fields where the header has {len(header)}")
            continue
        respondent = row[who].strip()
        item_id = row[what].strip()
        if collector.check_respondent(line, respondent) and collector.check_item(line, item_id):
            category = collector.category(
                line, item_id, row[value].strip(), as_option, value_column
            )
            if category is not None:
                collector.add(line, respondent, item_id, category)
    return collector.patterns()


def _read_wide(
    rows, header: list[str], bank: BankDocument, allowed: frozenset[str], where: str
) -> list[Pattern]:
    who = header.index(ID_COLUMN)
    items = [(k, name) for k, name in enumerate(header) if k != who]
    unknown = [f"{name or '(empty)'} (column {k + 1})" for k, name in items if name not in allowed]
    if unknown:
        raise FormError(
            [f"line 1: column(s) that are not items of {where}: " + ", ".join(unknown[:MAX_LISTED])]
        )
    repeated = sorted({name for _, name in items if sum(n == name for _, n in items) > 1})
    if repeated:
        raise FormError([f"line 1: item column(s) given twice: {', '.join(repeated)}"])
    collector = _Collector(bank, allowed, where)
    # Each column's letters and their scored categories ("a" as "A"): one look-up
    # per cell; anything else takes the checks below, which say what is wrong.
    letters = [(k, item_id, _letter_categories(bank, item_id)) for k, item_id in items]
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            collector.problem(line, f"{len(row)} fields where the header has {len(header)}")
            continue
        respondent = row[who].strip()
        if not collector.check_respondent(line, respondent):
            continue
        if not collector.start(line, respondent):
            continue
        answers = collector.answers[respondent]
        for k, item_id, categories in letters:
            cell = row[k].strip()
            if not cell:
                continue  # not answered
            category = categories.get(cell)
            if category is not None:
                answers[item_id] = (category, line)  # a row names each item once
                continue
            option = _letter(cell)
            if option is None:
                collector.problem(
                    line, f"item {item_id}: {cell!r} is not an option letter (A, B, C, …)"
                )
                continue
            category = collector.category(line, item_id, str(option), True, item_id, cell)
            if category is not None:
                collector.add(line, respondent, item_id, category)
    return collector.patterns()


def _letter_categories(bank: BankDocument, item_id: str) -> dict[str, int]:
    """The option letters of an item (upper and lower case) and their scored categories."""
    record = bank.item(item_id)
    n = len(record.options) if record.options else record.n_categories
    out = {}
    for option in range(min(n, 26)):
        letter = chr(ord("A") + option)
        out[letter] = out[letter.lower()] = record.score_option(option)
    return out


def _letter(cell: str) -> int | None:
    letter = cell.upper()
    if len(letter) == 1 and "A" <= letter <= "Z":
        return ord(letter) - ord("A")
    return None


class _Collector:
    """Answers by respondent, and every problem found on the way."""

    def __init__(self, bank: BankDocument, allowed: frozenset[str], where: str) -> None:
        self.bank = bank
        self.allowed = allowed
        self.where = where
        self.problems: list[tuple[int, str]] = []
        self.first_line: dict[str, int] = {}
        self.answers: dict[str, dict[str, tuple[int, int]]] = {}

    def problem(self, line: int, message: str) -> None:
        self.problems.append((line, f"line {line}: {message}"))

    def check_respondent(self, line: int, respondent: str) -> bool:
        if not respondent:
            self.problem(line, f"empty {ID_COLUMN}")
            return False
        return True

    def check_item(self, line: int, item_id: str) -> bool:
        if not item_id:
            self.problem(line, "empty item_id")
            return False
        if item_id not in self.allowed:
            self.problem(line, f"item {item_id!r} is not an item of {self.where}")
            return False
        return True

    def start(self, line: int, respondent: str) -> bool:
        """A wide row begins: one row per respondent."""
        if respondent in self.first_line:
            self.problem(
                line,
                f"respondent {respondent} has a second row (first on line "
                f"{self.first_line[respondent]})",
            )
            return False
        self.first_line[respondent] = line
        self.answers[respondent] = {}
        return True

    def category(
        self,
        line: int,
        item_id: str,
        text: str,
        as_option: bool,
        column: str,
        shown: str | None = None,
    ) -> int | None:
        """The scored category of ``text`` for the item, or None after noting the problem."""
        record = self.bank.item(item_id)
        try:
            value = int(text)
        except ValueError:
            self.problem(line, f"{column}: {text!r} is not a whole number")
            return None
        if as_option:
            n = len(record.options) if record.options else record.n_categories
            if not 0 <= value < n:
                said = shown if shown is not None else str(value)
                expected = f"A..{chr(ord('A') + n - 1)}" if shown is not None else f"0..{n - 1}"
                self.problem(
                    line, f"item {item_id}: option {said} does not exist (expected {expected})"
                )
                return None
            return record.score_option(value)
        if not 0 <= value < record.n_categories:
            self.problem(
                line,
                f"item {item_id}: response {value} is out of range "
                f"(expected 0..{record.n_categories - 1})",
            )
            return None
        return value

    def add(self, line: int, respondent: str, item_id: str, category: int) -> None:
        self.first_line.setdefault(respondent, line)
        answers = self.answers.setdefault(respondent, {})
        if item_id in answers:
            self.problem(
                line,
                f"respondent {respondent} answered item {item_id} again "
                f"(first on line {answers[item_id][1]})",
            )
            return
        answers[item_id] = (category, line)

    def patterns(self) -> list[Pattern]:
        for respondent, answers in self.answers.items():
            if not answers:
                self.problem(
                    self.first_line[respondent], f"respondent {respondent} answered nothing"
                )
        if self.problems:
            ordered = [message for _, message in sorted(self.problems, key=lambda p: p[0])]
            shown = ordered[:MAX_LISTED]
            more = len(ordered) - len(shown)
            raise FormError(shown + ([f"… and {more} more"] if more else []))
        if not self.answers:
            raise FormError(["the file has a header but no answers"])
        return [
            Pattern(
                respondent_id=respondent,
                answers=tuple((item, value) for item, (value, _) in answers.items()),
                line=self.first_line[respondent],
            )
            for respondent, answers in self.answers.items()
        ]
