"""Response data: reading and validating the long CSV of DESIGN §3.

``respondent_id,item_id,response`` plus any extra columns (ignored). A missing
response is an absent row, so data from adaptive tests stays compact: one
entry per observed response, never a persons x items matrix.

The reader uses pyarrow's multi-threaded CSV parser when it is installed
(20 million rows in a few seconds) and the standard library otherwise; both
paths validate the same way and raise :class:`ResponseDataError` listing every
problem found, before anything is written anywhere.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:  # the items package is only needed for its types here
    from nangluc.items import BankDocument

REQUIRED_COLUMNS = ("respondent_id", "item_id", "response")
# Without a bank the number of categories comes from the data; a response
# above this is far more likely a data error than a 12-category item.
MAX_CATEGORIES_WITHOUT_BANK = 10
_MAX_LISTED = 20


class ResponseDataError(ValueError):
    """Bad response data; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, eq=False)
class ResponseData:
    """Observed responses in compact long form (one entry per response).

    Attributes
    ----------
    respondent_ids : tuple of str
        Respondents in order of first appearance; ``person`` indexes them.
    item_ids : tuple of str
        Items in the data, sorted; ``item`` indexes them.
    person, item : ndarray of int32, shape (R,)
    response : ndarray of int16, shape (R,)
        Scored category 0..m-1.
    n_categories : ndarray of int, shape (n_items,)
        Categories of each item: from the bank when one was given, else the
        highest observed response + 1 (at least 2).
    areas : tuple of str
        Area code per item (from the bank, an ``area`` column, or the part of
        the id before the first dot; ``"1"`` when the id has no dot).
    competences : tuple of str
        Competence code per item when known, else ``""``.
    """

    respondent_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    person: np.ndarray
    item: np.ndarray
    response: np.ndarray
    n_categories: np.ndarray
    areas: tuple[str, ...]
    competences: tuple[str, ...]

    @property
    def n_respondents(self) -> int:
        return len(self.respondent_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_responses(self) -> int:
        return int(self.person.size)

    def responses_per_item(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)

    def category_counts(self) -> np.ndarray:
        """Counts per item x category, shape (n_items, max categories)."""
        width = int(self.n_categories.max())
        flat = np.bincount(
            self.item.astype(np.int64) * width + self.response, minlength=self.n_items * width
        )
        return flat.reshape(self.n_items, width)

    @classmethod
    def from_arrays(
        cls,
        person_ids: Sequence[str],
        item_ids: Sequence[str],
        responses: Sequence[int] | np.ndarray,
        *,
        bank: BankDocument | None = None,
    ) -> ResponseData:
        """Build validated response data from parallel columns (one entry per response)."""
        person_ids = np.asarray(person_ids, dtype=str).reshape(-1)
        item_ids = np.asarray(item_ids, dtype=str).reshape(-1)
        text = np.asarray(responses).astype(str).reshape(-1)
        if not person_ids.size == item_ids.size == text.size:
            raise ResponseDataError(
                [
                    f"respondent ids, item ids and responses differ in length ({person_ids.size}, {item_ids.size}, {text.size})"
                ]
            )
        if text.size == 0:
            raise ResponseDataError(["there are no responses"])
        return _build(person_ids, item_ids, text, None, bank)


def read_responses(
    source: str | Path | TextIO, *, bank: BankDocument | None = None
) -> ResponseData:
    """Read and validate a long-format response CSV.

    Parameters
    ----------
    source : str, Path or text stream
        The CSV file (UTF-8, header row with ``respondent_id,item_id,response``;
        extra columns are ignored, except ``area`` which names an item's area
        when no bank is given).
    bank : BankDocument, optional
        The current bank: item ids must be in it and responses within each
        item's categories.

    Returns
    -------
    ResponseData

    Raises
    ------
    ResponseDataError
        Listing every problem: not a CSV file, missing columns, an empty
        file, unknown item ids, responses that are not whole numbers or lie
        outside an item's categories (with line numbers), duplicated
        (respondent, item) pairs.
    """
    raw = _read_bytes(source)
    head = raw[:65536]
    if not head.strip() and not raw.strip():
        raise ResponseDataError(["the response file is empty"])
    if b"\x00" in head:
        raise ResponseDataError(
            ["the response file is not a CSV text file (it contains binary data)"]
        )
    try:
        header_line = head.split(b"\n", 1)[0].decode("utf-8-sig").strip("\r")
    except UnicodeDecodeError:
        raise ResponseDataError(["the response file is not UTF-8 text"]) from None
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ResponseDataError(
            [
                f"missing column(s) {', '.join(missing)}: the response file must be a CSV with a header row "
                f"'respondent_id,item_id,response' (found {header_line[:80]!r})"
            ]
        )
    columns = _parse(raw, header)
    if columns[0].size == 0:
        raise ResponseDataError(["the response file has a header but no responses"])
    return _build(*columns, bank)


def _read_bytes(source: str | Path | TextIO) -> bytes:
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ResponseDataError([f"response file not found: {path}"])
        return path.read_bytes()
    if hasattr(source, "read"):
        content = source.read()
        return content.encode("utf-8") if isinstance(content, str) else bytes(content)
    raise TypeError(f"source must be a path or a text stream, not {type(source).__name__}")


def _parse(
    raw: bytes, header: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Columns as arrays of str: respondent, item, response, area (or None)."""
    wanted = [*REQUIRED_COLUMNS, *(["area"] if "area" in header else [])]
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return _parse_stdlib(raw, header, wanted)
    read_options = pacsv.ReadOptions(use_threads=True, block_size=1 << 24)
    parse_options = pacsv.ParseOptions(newlines_in_values=False)
    # First try the fast typed read: ids dictionary-encoded while parsing,
    # responses as integers. Any conversion problem re-reads the columns as
    # text so every bad value can be reported with its line.
    ids = pa.dictionary(pa.int32(), pa.string())
    typed = {"respondent_id": ids, "item_id": ids, "response": pa.int64(), "area": ids}
    for types in (typed, dict.fromkeys(typed, pa.string())):
        try:
            table = pacsv.read_csv(
                io.BytesIO(raw),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=pacsv.ConvertOptions(
                    include_columns=wanted,
                    column_types={c: types[c] for c in wanted},
                    null_values=[],
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if types is typed and "conversion error" in str(exc).lower():
                continue
            raise ResponseDataError([f"the response file is not a valid CSV file: {exc}"]) from None
        break
    table = table.unify_dictionaries()
    return tuple(_ArrowColumn(table.column(c)) for c in REQUIRED_COLUMNS) + (
        _ArrowColumn(table.column("area")) if "area" in wanted else None,
    )


class _ArrowColumn:
    """A pyarrow column (text, dictionary-encoded text or integers) with the operations :func:`_build` needs."""

    def __init__(self, column):
        import pyarrow as pa

        self.column = column
        self.encoded = pa.types.is_dictionary(column.type)
        self.integer = pa.types.is_integer(column.type)

    @property
    def size(self) -> int:
        return len(self.column)

    def factorize(self) -> tuple[np.ndarray, list[str]]:
        """Integer codes per row and the distinct values."""
        chunks = self.column.chunks if self.encoded else self.column.dictionary_encode().chunks
        if not chunks:
            return np.zeros(0, np.int32), []
        # after unify_dictionaries (or one encode) every chunk shares one dictionary
        codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(
            np.int32
        )
        return codes, chunks[0].dictionary.to_pylist()

    def to_integers(self) -> tuple[np.ndarray, np.ndarray]:
        """Integer values and the rows that are not whole numbers."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.integer:
            return self.column.to_numpy().astype(np.int64), np.zeros(0, np.int64)
        try:
            values = pc.cast(self.column, pa.int64())
            return values.to_numpy().astype(np.int64), np.zeros(0, np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            trimmed = pc.utf8_trim_whitespace(self.column)
            ok = pc.match_substring_regex(trimmed, r"^[+-]?[0-9]{1,9}$").to_numpy()
            values = np.zeros(ok.size, dtype=np.int64)
            good = pc.filter(trimmed, pa.chunked_array([pa.array(ok)]))
            values[ok] = pc.cast(good, pa.int64()).to_numpy()
            return values, np.flatnonzero(~ok)

    def values(self, rows: np.ndarray) -> list[str]:
        return [str(self.column[int(r)].as_py()) for r in rows]


class _ListColumn:
    """A column parsed by the standard library, with the same operations."""

    def __init__(self, values: list[str]):
        self.data = np.asarray(values, dtype=object)

    @property
    def size(self) -> int:
        return int(self.data.size)

    def factorize(self) -> tuple[np.ndarray, list[str]]:
        uniques, inverse = np.unique(self.data.astype(str), return_inverse=True)
        return inverse.astype(np.int32), [str(u) for u in uniques]

    def to_integers(self) -> tuple[np.ndarray, np.ndarray]:
        values = np.zeros(self.data.size, dtype=np.int64)
        bad = []
        for r, v in enumerate(self.data):
            text = str(v).strip()
            if text.lstrip("+-").isdigit() and len(text) <= 10:
                values[r] = int(text)
            else:
                bad.append(r)
        return values, np.asarray(bad, dtype=np.int64)

    def values(self, rows: np.ndarray) -> list[str]:
        return [str(self.data[int(r)]) for r in rows]


def _parse_stdlib(raw: bytes, header: list[str], wanted: list[str]):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ResponseDataError(["the response file is not UTF-8 text"]) from None
    reader = csv.reader(io.StringIO(text))
    next(reader)
    positions = [header.index(c) for c in wanted]
    out: list[list[str]] = [[] for _ in wanted]
    bad_width = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            bad_width.append(line)
            continue
        for col, pos in zip(out, positions, strict=True):
            col.append(row[pos])
    if bad_width:
        raise ResponseDataError(
            [
                f"the response file is not a valid CSV file: wrong number of fields on line(s) {_lines(bad_width)}"
            ]
        )
    columns = [_ListColumn(c) for c in out]
    return (*columns[:3], columns[3] if len(columns) > 3 else None)


def _lines(rows: Sequence[int]) -> str:
    rows = list(rows)
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED])
    return shown + (f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else "")


def _build(person_col, item_col, response_col, area_col, bank) -> ResponseData:
    """Validate parsed columns and encode them as compact arrays."""
    if isinstance(person_col, np.ndarray):  # from_arrays: plain arrays of str
        person_col, item_col, response_col = (
            _ListColumn(list(c)) for c in (person_col, item_col, response_col)
        )
    problems: list[str] = []
    person_codes, person_names = person_col.factorize()
    item_codes, item_names = item_col.factorize()
    for name, codes, names in (
        ("respondent_id", person_codes, person_names),
        ("item_id", item_codes, item_names),
    ):
        # check the (small) dictionary of distinct values, not every row
        empty = [k for k, value in enumerate(names) if not value.strip()]
        if empty:
            blank = np.flatnonzero(np.isin(codes, empty))
            problems.append(f"empty {name} on line(s) {_lines(blank + 2)}")
    values, not_integer = response_col.to_integers()
    if not_integer.size:
        shown = ", ".join(
            f"line {r + 2} ({v!r})"
            for r, v in zip(
                not_integer[:_MAX_LISTED],
                response_col.values(not_integer[:_MAX_LISTED]),
                strict=True,
            )
        )
        more = (
            f" and {not_integer.size - _MAX_LISTED} more" if not_integer.size > _MAX_LISTED else ""
        )
        problems.append(
            f"responses must be whole numbers (scored categories 0, 1, ...): {shown}{more}"
        )
    item_names = [s.strip() for s in item_names]
    # the same id with stray spaces must be one item: merge after stripping
    unique_names = sorted(set(item_names))
    position = {name: i for i, name in enumerate(unique_names)}
    remap = np.array([position[n] for n in item_names], dtype=np.int32)
    item_index = remap[item_codes] if item_codes.size else item_codes
    n_items = len(unique_names)

    areas: list[str]
    competences: list[str]
    if bank is not None:
        known = {record.id: record for record in bank.items}
        unknown = [n for n in unique_names if n and n not in known]
        if unknown:
            problems.append(
                f"{len(unknown)} item id(s) not in bank {bank.version}: {', '.join(unknown[:_MAX_LISTED])}"
                + (f" and {len(unknown) - _MAX_LISTED} more" if len(unknown) > _MAX_LISTED else "")
            )
        n_categories = np.array(
            [_bank_categories(known[n]) if n in known else 2 for n in unique_names], dtype=np.int64
        )
        areas = [str(known[n].area) if n in known else "" for n in unique_names]
        competences = [str(known[n].competence or "") if n in known else "" for n in unique_names]
    else:
        n_categories = np.full(n_items, MAX_CATEGORIES_WITHOUT_BANK, dtype=np.int64)
        areas, competences = _areas_without_bank(unique_names, item_index, area_col)

    if not not_integer.size and n_items:
        limit = n_categories[item_index]
        bad = np.flatnonzero((values < 0) | (values >= limit))
        if bad.size:
            shown = ", ".join(
                f"line {r + 2} (item {unique_names[item_index[r]]}: {values[r]}, expected 0..{limit[r] - 1})"
                for r in bad[:_MAX_LISTED]
            )
            more = f" and {bad.size - _MAX_LISTED} more" if bad.size > _MAX_LISTED else ""
            problems.append(f"responses outside the item's categories: {shown}{more}")
    if problems:
        raise ResponseDataError(problems)

    response = values.astype(np.int16)
    _check_duplicates(
        person_codes, item_index, len(person_names), n_items, person_names, unique_names
    )
    if bank is None:
        observed = np.zeros(n_items, dtype=np.int64)
        np.maximum.at(observed, item_index, response.astype(np.int64))
        n_categories = np.maximum(observed + 1, 2)
    return ResponseData(
        respondent_ids=tuple(person_names),
        item_ids=tuple(unique_names),
        person=person_codes,
        item=item_index.astype(np.int32),
        response=response,
        n_categories=n_categories,
        areas=tuple(areas),
        competences=tuple(competences),
    )


def _bank_categories(record) -> int:
    return record.n_categories


def _areas_without_bank(
    names: list[str], item_index: np.ndarray, area_col
) -> tuple[list[str], list[str]]:
    if area_col is not None:
        codes, labels = area_col.factorize()
        first = np.full(len(names), -1)
        first[item_index[::-1]] = codes[::-1]
        areas = [labels[c].strip() if c >= 0 else "1" for c in first]
    else:
        areas = [n.split(".", 1)[0] if "." in n else "1" for n in names]
    competences = [".".join(n.split(".")[:2]) if n.count(".") >= 2 else "" for n in names]
    return areas, competences


def _check_duplicates(person, item, n_persons, n_items, person_names, item_names) -> None:
    """Each respondent answers an item at most once (a repeated row is a data error)."""
    ones = np.ones(person.size, dtype=np.int32)
    matrix = sp.csr_matrix((ones, (person, item)), shape=(n_persons, max(n_items, 1)))
    if matrix.nnz == person.size:
        return
    rows, cols = np.nonzero(matrix > 1)
    pairs = [
        f"{person_names[r]}/{item_names[c]}"
        for r, c in zip(rows[:_MAX_LISTED], cols[:_MAX_LISTED], strict=True)
    ]
    more = f" and {rows.size - _MAX_LISTED} more" if rows.size > _MAX_LISTED else ""
    raise ResponseDataError(
        [
            f"a respondent answered the same item more than once (respondent/item): {', '.join(pairs)}{more}"
        ]
    )
