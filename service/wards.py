"""The city's wards and communes, and free text mapped onto them.

The list is a data file (``service/data/wards.json``, replaceable with
``NANGLUC_WARDS``): the current commune-level units with a stable code each,
where the list comes from and as of when. Reports group by the codes; the
citizen page suggests the names; a citizen may still type anything.

Free text is matched by a *key* that ignores what people vary without
meaning another place (:func:`ward_key`): Unicode normalisation (NFC), case,
spaces and punctuation, where the tone mark sits in a syllable ("Hoà" and
"Hòa"), and the "phường / xã / đặc khu" prefix. Text typed without any
Vietnamese marks ("hai chau") matches a name whose unmarked spelling is
unique in the list. Anything else is ``other``: one group in the reports,
which an administrator can list and map to a unit (an alias), never a group
of its own.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent / "data" / "wards.json"
#: The group of tests whose ward matched no unit.
OTHER = "other"
#: The group of tests that gave no ward.
NONE = "none"
KINDS = ("phường", "xã", "đặc khu")

# Combining marks of the five Vietnamese tones (grave, acute, tilde, hook
# above, dot below); the vowel marks (circumflex, breve, horn) stay.
_TONES = {"\u0300": "2", "\u0301": "1", "\u0303": "4", "\u0309": "3", "\u0323": "5"}
_PREFIXES = (
    "phường",
    "phuong",
    "p",
    "xã",
    "xa",
    "x",
    "đặc khu",
    "dac khu",
    "thị trấn",
    "thi tran",
    "tt",
)
_SUFFIXES = (
    "thành phố đà nẵng",
    "thanh pho da nang",
    "tp đà nẵng",
    "tp da nang",
    "đà nẵng",
    "da nang",
)
_SEPARATORS = re.compile(r"[\s.,;:/\\_\-–—()\[\]\"'`]+", re.UNICODE)


def _clean(text: str) -> str:
    """NFC, case-folded, punctuation as spaces, single spaces, no prefix or city suffix."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = _SEPARATORS.sub(" ", text).strip()
    for suffix in _SUFFIXES:
        if text.endswith(" " + suffix):
            text = text[: -len(suffix) - 1].strip()
            break
    for prefix in _PREFIXES:
        if text.startswith(prefix + " ") and len(text) > len(prefix) + 1:
            text = text[len(prefix) + 1 :].strip()
            break
    return text


def _syllable_key(syllable: str) -> str:
    decomposed = unicodedata.normalize("NFD", syllable)
    tone = "".join(_TONES[c] for c in decomposed if c in _TONES)
    base = "".join(c for c in decomposed if c not in _TONES)
    return unicodedata.normalize("NFC", base) + tone[:1]


def ward_key(text: str) -> str:
    """The matching key of free text: see the module docstring. Empty for blank text."""
    if not isinstance(text, str):
        raise TypeError("a ward must be text")
    return " ".join(_syllable_key(s) for s in _clean(text).split())


def unmarked(text: str) -> str:
    """The key of ``text`` with every Vietnamese mark removed (đ becomes d)."""
    cleaned = _clean(text).replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", cleaned)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def _is_unmarked(text: str) -> bool:
    cleaned = _clean(text)
    return cleaned == unmarked(cleaned)


@dataclass(frozen=True)
class Unit:
    """A commune-level unit: its stable code, kind and name (without the kind)."""

    code: str
    kind: str
    name: str
    aliases: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        """The name as the city writes it: "Phường Hải Châu", "Xã Hòa Vang"."""
        return f"{self.kind[:1].upper()}{self.kind[1:]} {self.name}"

    def label(self, language: str) -> str:
        if language == "en":
            kind = {"phường": "Ward", "xã": "Commune", "đặc khu": "Special zone"}[self.kind]
            return f"{self.name} {kind}"
        return self.full_name


@dataclass(frozen=True, eq=False)
class WardList:
    """The units of one ward file and the lookup from free text to a unit code."""

    units: tuple[Unit, ...]
    region: dict[str, str]
    as_of: str
    source: str
    note: str

    def __post_init__(self) -> None:
        keys: dict[str, str] = {}
        plain: dict[str, set[str]] = {}
        codes = set()
        for unit in self.units:
            if unit.code in codes or unit.code in (OTHER, NONE):
                raise ValueError(f"ward code {unit.code!r} is used twice or reserved")
            codes.add(unit.code)
            for name in (unit.name, unit.full_name, *unit.aliases):
                key = ward_key(name)
                if keys.get(key, unit.code) != unit.code:
                    raise ValueError(f"{name!r} matches two units ({keys[key]}, {unit.code})")
                keys[key] = unit.code
                plain.setdefault(unmarked(name), set()).add(unit.code)
        object.__setattr__(self, "_keys", keys)
        # Unmarked spellings that name one unit only (others are ambiguous).
        object.__setattr__(
            self, "_plain", {k: next(iter(v)) for k, v in plain.items() if len(v) == 1}
        )
        object.__setattr__(self, "_by_code", {u.code: u for u in self.units})

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(u.code for u in self.units)

    def unit(self, code: str) -> Unit:
        return self._by_code[code]  # type: ignore[attr-defined]

    def label(self, code: str, language: str) -> str:
        """Display name of a unit code, or of the ``other`` / ``none`` groups."""
        if code == OTHER:
            return (
                "Other (not in the list)" if language == "en" else "Khác (không có trong danh sách)"
            )
        if code == NONE:
            return "Not given" if language == "en" else "Không ghi"
        return self.unit(code).label(language)

    def match(self, text: str | None, aliases: Mapping[str, str] | None = None) -> str:
        """The unit code ``text`` names, ``none`` for no text, else ``other``.

        ``aliases`` maps further keys (:func:`ward_key`) to codes (an
        administrator's mappings); a key that is a unit's own is never
        overridden.
        """
        if text is None or not text.strip():
            return NONE
        key = ward_key(text)
        if not key:
            return NONE
        code = self._keys.get(key)  # type: ignore[attr-defined]
        if code is not None:
            return code
        if aliases and key in aliases and aliases[key] in self._by_code:  # type: ignore[attr-defined]
            return aliases[key]
        if _is_unmarked(text):
            code = self._plain.get(unmarked(text))  # type: ignore[attr-defined]
            if code is not None:
                return code
        return OTHER

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        """The list as the API gives it (names in both languages)."""
        return {
            "region": self.region,
            "as_of": self.as_of,
            "source": self.source,
            "units": [
                {
                    "code": u.code,
                    "kind": u.kind,
                    "name": u.full_name,
                    "name_en": u.label("en"),
                }
                for u in self.units
            ],
        }


def parse_ward_list(document: Mapping[str, Any]) -> WardList:
    """Validate a ward file's content.

    Raises
    ------
    ValueError
        With what is wrong: format, a unit without code/kind/name, an unknown
        kind, a duplicate code or two units with the same name.
    """
    if not isinstance(document, Mapping) or document.get("format") != 1:
        raise ValueError('a ward file must be a JSON object with "format": 1')
    units_in = document.get("units")
    if not isinstance(units_in, list) or not units_in:
        raise ValueError('a ward file needs a non-empty "units" list')
    units = []
    for i, raw in enumerate(units_in):
        if not isinstance(raw, Mapping):
            raise ValueError(f"unit {i} must be an object")
        code, kind, name = raw.get("code"), raw.get("kind"), raw.get("name")
        if not (isinstance(code, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", code)):
            raise ValueError(
                f"unit {i}: code must be lowercase letters, digits and '-', got {code!r}"
            )
        if kind not in KINDS:
            raise ValueError(f"unit {code}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not (isinstance(name, str) and name.strip()):
            raise ValueError(f"unit {code}: name must be non-empty text")
        aliases = raw.get("aliases", [])
        if not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
            raise ValueError(f"unit {code}: aliases must be a list of text")
        units.append(
            Unit(
                code=code,
                kind=kind,
                name=unicodedata.normalize("NFC", name.strip()),
                aliases=tuple(unicodedata.normalize("NFC", a) for a in aliases),
            )
        )
    region = document.get("region") or {}
    return WardList(
        units=tuple(units),
        region={"vi": str(region.get("vi", "")), "en": str(region.get("en", ""))},
        as_of=str(document.get("as_of", "")),
        source=str(document.get("source", "")),
        note=str(document.get("note", "")),
    )


@cache
def _load(path: str) -> WardList:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the ward file {path}: {error}") from None
    try:
        return parse_ward_list(document)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def load_wards(path: str | os.PathLike[str] | None = None) -> WardList:
    """The ward list of ``path`` (default: ``NANGLUC_WARDS`` or the shipped file), cached."""
    chosen = path or os.environ.get("NANGLUC_WARDS") or DATA_FILE
    return _load(str(Path(chosen).resolve()))


def group_codes(wards: WardList) -> tuple[str, ...]:
    """Every group a ward table has: the units, ``other`` and ``none``."""
    return (*wards.codes, OTHER, NONE)


def map_texts(
    wards: WardList, texts: Iterable[str | None], aliases: Mapping[str, str] | None = None
) -> list[str]:
    """:meth:`WardList.match` for many texts."""
    return [wards.match(t, aliases) for t in texts]
