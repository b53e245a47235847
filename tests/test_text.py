"""Free-text labels in, spreadsheet cells out (``nangluc.text``)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nangluc.text import (
    BIDI_CONTROLS,
    FORMULA_PREFIXES,
    LABEL_PATTERN,
    clean_label,
    csv_writer,
    escape_cell,
)


@pytest.mark.parametrize(
    "value",
    ["=1+1", "+1+1", "-2+3", "@SUM(1,1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0", "＝1", "＠A1"],
)
def test_formula_cells_become_text(value: str) -> None:
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Hải Châu", "", "1.1.01", "a=b", "'=1", -2, 3.5, None])
def test_other_cells_are_unchanged(value) -> None:
    assert escape_cell(value) == value


@given(st.text())
def test_no_escaped_cell_starts_a_formula(value: str) -> None:
    cell = escape_cell(value)
    assert cell == "" or cell[0] not in FORMULA_PREFIXES
    assert cell.removeprefix("'") == value or cell == value


def test_csv_writer_escapes_every_cell() -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer, lineterminator="\n")
    writer.writerow(['=HYPERLINK("http://x")', "-2+3", -2, "ok"])
    writer.writerows([["@SUM(1)", None]])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [['\'=HYPERLINK("http://x")', "'-2+3", "-2", "ok"], ["'@SUM(1)", ""]]


def test_labels_are_nfc_with_single_spaces() -> None:
    decomposed = unicodedata.normalize("NFD", "Phường  Hòa Khánh Bắc")
    assert clean_label(f" \u200b{decomposed}\ufeff ") == "Phường Hòa Khánh Bắc"
    assert clean_label("Hải\u00adChâu") == "HảiChâu"  # soft hyphen: invisible, removed


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\u202eb", "bidirectional"),
        ("a\u2066b", "bidirectional"),
        ("a\u200fb", "bidirectional"),
        ("a\u2028b", "line or paragraph separator"),
        ("a\u2029b", "line or paragraph separator"),
        ("a\nb", "control character"),
        ("a\x00b", "control character"),
        ("a\x85b", "control character"),
        ("\u200b", "empty"),
        ("  \u200c\u200d ", "empty"),
        ("", "empty"),
        ("x" * 101, "longer than 100"),
    ],
)
def test_labels_with_hidden_or_control_characters_are_refused(value: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        clean_label(value, what="ward")


@given(st.text(max_size=60))
def test_clean_label_is_idempotent_and_matches_its_pattern(value: str) -> None:
    try:
        cleaned = clean_label(value)
    except ValueError:
        return
    assert clean_label(cleaned) == cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert not BIDI_CONTROLS & set(cleaned)
    assert re.match(LABEL_PATTERN, cleaned)
    assert cleaned == cleaned.strip() and "  " not in cleaned
