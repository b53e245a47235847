"""Text that crosses a trust boundary: free-text labels in, spreadsheet cells out.

Two helpers, used wherever the product takes a label from a client (a ward
typed into the API) or writes a cell someone will open in a spreadsheet (the
researchers' ``responses.csv``, the planners' CSV files):

- :func:`clean_label` normalises a label (NFC, single spaces, invisible
  format characters removed) and refuses what has no place in a name: control
  characters, bidirectional overrides (U+202E can make ``gnp.exe`` read as
  ``exe.png``), line and paragraph separators, and values that are empty once
  invisible characters are gone.
- :func:`escape_cell` stops a cell from being read as a formula by Excel,
  LibreOffice or Google Sheets (CSV injection: ``=HYPERLINK(...)``,
  ``=cmd|' /C calc'!A0``); :func:`csv_writer` applies it to every cell.

Pure standard library, so every part of nangluc (service, simulations,
calibration) can use them.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from typing import Any, TextIO

#: Characters a spreadsheet reads as the start of a formula when a cell begins
#: with them: = + - @, tab and carriage return (OWASP's list), and the
#: full-width forms of = + - @ that some spreadsheets fold to ASCII.
FORMULA_PREFIXES = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")

#: Bidirectional controls: embeddings, overrides, isolates and marks.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

_SPACES = re.compile(r"\s+")


def escape_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula.

    Text beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return (or a full-width ``＝ ＋ － ＠``) gets a leading apostrophe, the
    spreadsheets' own "this is text" mark; other text, numbers and None are
    returned as they are (a number such as ``-2`` is data, not a formula).

    Parameters
    ----------
    value : object
        The cell's value.

    Returns
    -------
    object
        ``"'" + value`` for a risky string, else ``value`` unchanged.
    """
    if isinstance(value, str) and value and value[0] in FORMULA_PREFIXES:
        return "'" + value
    return value


def csv_writer(stream: TextIO, **kwargs: Any) -> SafeCsvWriter:
    """A :func:`csv.writer` whose rows pass through :func:`escape_cell`.

    Parameters
    ----------
    stream : text file
        Where the rows go.
    **kwargs
        Passed to :func:`csv.writer` (``lineterminator`` and so on).
    """
    return SafeCsvWriter(csv.writer(stream, **kwargs))


class SafeCsvWriter:
    """Wraps a :func:`csv.writer`; every string cell is escaped (see :func:`escape_cell`)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([escape_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def clean_label(value: str, *, what: str = "label", max_length: int = 100) -> str:
    """A free-text label (a ward, a group name) in one canonical, printable form.

    The text is put in Unicode NFC (so "Hải Châu" typed on two keyboards is
    one string), invisible format characters (zero-width space and joiners,
    the byte-order mark, soft hyphen: Unicode category Cf) are removed, runs
    of white space become one space and the ends are trimmed.

    Parameters
    ----------
    value : str
        The label as received.
    what : str
        What the label is, for the error message ("ward").
    max_length : int
        Longest accepted label, in characters after cleaning.

    Returns
    -------
    str
        The cleaned label.

    Raises
    ------
    ValueError
        If the label holds control characters (tab and line breaks included),
        bidirectional controls (:data:`BIDI_CONTROLS`), line or paragraph
        separators (U+2028, U+2029) or lone surrogates, is empty once cleaned,
        or is longer than ``max_length``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be text, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", value)
    kept = []
    for char in text:
        if char in BIDI_CONTROLS:
            raise ValueError(
                f"{what} contains a bidirectional control character (U+{ord(char):04X}); "
                "type the name as plain text"
            )
        category = unicodedata.category(char)
        if category in ("Zl", "Zp"):
            raise ValueError(
                f"{what} contains a line or paragraph separator (U+{ord(char):04X}); "
                "a name is one line of text"
            )
        if category in ("Cc", "Cs"):
            raise ValueError(f"{what} contains a control character (U+{ord(char):04X})")
        if category != "Cf":  # invisible format characters are dropped
            kept.append(char)
    # Again after removing format characters: a joiner between a letter and its
    # accent kept them from composing.
    text = unicodedata.normalize("NFC", _SPACES.sub(" ", "".join(kept)).strip())
    if not text:
        raise ValueError(f"{what} is empty (it holds only spaces or invisible characters)")
    if len(text) > max_length:
        raise ValueError(f"{what} is longer than {max_length} characters")
    return text


#: A JSON-schema ``pattern`` for labels: no character :func:`clean_label` refuses.
LABEL_PATTERN = (
    "^[^\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u2028\\u2029]+$"
)
