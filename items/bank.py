"""Bank documents: loading, validating, versioning, writing, and the engine's array form.

A :class:`BankDocument` is the parsed, validated, NFC-normalised bank file
(DESIGN §3). :attr:`BankDocument.item_bank` turns it into the engine's
:class:`nangluc.engine.bank.ItemBank`, built once per (version, content hash).

Published versions are immutable: :func:`write_bank` refuses to replace a file
holding the same version with different content; a change is a new version
made by :func:`new_version`, whose ``parent`` is the version it came from.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nangluc.engine.bank import ItemBank
from nangluc.engine.scale import DEFAULT_LEVELS, Level, Scale
from nangluc.items.schema import (
    POLYTOMOUS,
    BankError,
    BankFileError,
    Problem,
    validate_document,
)

__all__ = [
    "DEFAULT_BANK_PATH",
    "FRAMEWORK_PATH",
    "Area",
    "atomic_write",
    "BankDocument",
    "BankError",
    "BankFileError",
    "Competence",
    "Framework",
    "ItemRecord",
    "LevelBand",
    "Problem",
    "bank_from_dict",
    "canonical_json",
    "content_hash",
    "load_bank",
    "load_framework",
    "new_version",
    "read_json",
    "write_bank",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_BANK_PATH = DATA_DIR / "bank.json"
#: Worked examples of other frameworks (``items/data/examples/README.md``).
EXAMPLES_DIR = DATA_DIR / "examples"
#: The second, small framework: household online safety, 3 areas, 4 levels, weighted overall.
HOUSEHOLD_SAFETY_BANK_PATH = EXAMPLES_DIR / "household-safety.json"
FRAMEWORK_PATH = DATA_DIR / "framework.json"

Text = dict[str, str]


def nfc(value: Any) -> Any:
    """``value`` with every string (keys included) in Unicode NFC."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {nfc(k): nfc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc(v) for v in value]
    return value


def _text(value: Mapping[str, str] | None) -> Text | None:
    """A text object, trimmed, with an empty English text dropped (absent and "" mean the same).

    Spaces at either end never carry meaning and a spreadsheet would lose them,
    so they are removed here once for all.
    """
    if value is None:
        return None
    out = {"vi": value["vi"].strip()}
    en = (value.get("en") or "").strip()
    if en:
        out["en"] = en
    return out


# --------------------------------------------------------------------------- framework
@dataclass(frozen=True)
class Area:
    """A framework area (lĩnh vực), e.g. code "4", Bảo vệ và an toàn."""

    code: str
    name: Text
    description: Text | None = None


@dataclass(frozen=True)
class Competence:
    """A component competence (năng lực thành phần), e.g. "4.2" in area "4"."""

    code: str
    area: str
    name: Text
    description: Text | None = None


@dataclass(frozen=True)
class LevelBand:
    """A proficiency level: scores in ``[lower, upper)``; the top band includes its upper bound."""

    code: int
    name: Text
    lower: float
    upper: float
    description: Text | None = None


@dataclass(frozen=True)
class BasicSkill:
    """A basic skill a city teaches every citizen (e.g. "online-payment").

    Items name the basic skills they belong to by code; the shipped framework
    has the five that provinces teach door to door: online public services,
    online shopping, online payment, protecting yourself online and using
    digital platforms.
    """

    code: str
    name: Text
    description: Text | None = None


@dataclass(frozen=True)
class Framework:
    """Areas, competences, levels, basic skills and the overall rule of a competence framework.

    ``overall_rule`` is how the area scores make the overall score: None or
    ``"mean"`` (the plain mean) or ``"weighted"`` with ``overall_weights``
    (area code, weight) pairs, one per area. :attr:`scale` is the engine's
    form of the levels and the rule.
    """

    areas: tuple[Area, ...]
    competences: tuple[Competence, ...] = ()
    levels: tuple[LevelBand, ...] = ()
    name: Text | None = None
    source: Text | None = None
    basic_skills: tuple[BasicSkill, ...] = ()
    overall_rule: str | None = None
    overall_weights: tuple[tuple[str, float], ...] | None = None

    @property
    def scale(self) -> Scale:
        """The engine's :class:`~nangluc.engine.scale.Scale`: these levels and overall rule.

        A framework without levels uses the Đà Nẵng framework's five bands.
        """
        levels = (
            tuple(
                Level(
                    band.code,
                    band.name["vi"],
                    band.name.get("en") or band.name["vi"],
                    band.lower,
                    band.upper,
                )
                for band in self.levels
            )
            if self.levels
            else DEFAULT_LEVELS
        )
        weights = self.overall_weights if self.overall_rule == "weighted" else None
        return Scale(levels, weights)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Framework:
        """Build from the (validated) ``framework`` object of a bank file."""
        return cls(
            areas=tuple(
                Area(a["code"], _text(a["name"]), _text(a.get("description"))) for a in d["areas"]
            ),
            competences=tuple(
                Competence(c["code"], c["area"], _text(c["name"]), _text(c.get("description")))
                for c in d.get("competences", ())
            ),
            levels=tuple(
                LevelBand(
                    int(v["code"]),
                    _text(v["name"]),
                    float(v["lower"]),
                    float(v["upper"]),
                    _text(v.get("description")),
                )
                for v in d.get("levels", ())
            ),
            name=_text(d.get("name")),
            source=_text(d.get("source")),
            basic_skills=tuple(
                BasicSkill(b["code"], _text(b["name"]), _text(b.get("description")))
                for b in d.get("basic_skills", ())
            ),
            overall_rule=d["overall"]["rule"] if "overall" in d else None,
            overall_weights=(
                tuple((str(k), float(v)) for k, v in d["overall"]["weights"].items())
                if "overall" in d and "weights" in d["overall"]
                else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``framework`` object of a bank file."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = dict(self.name)
        if self.source is not None:
            out["source"] = dict(self.source)
        out["areas"] = [
            _drop_none({"code": a.code, "name": dict(a.name), "description": a.description})
            for a in self.areas
        ]
        if self.competences:
            out["competences"] = [
                _drop_none(
                    {
                        "code": c.code,
                        "area": c.area,
                        "name": dict(c.name),
                        "description": c.description,
                    }
                )
                for c in self.competences
            ]
        if self.levels:
            out["levels"] = [
                _drop_none(
                    {
                        "code": v.code,
                        "lower": _number(v.lower),
                        "upper": _number(v.upper),
                        "name": dict(v.name),
                        "description": v.description,
                    }
                )
                for v in self.levels
            ]
        if self.basic_skills:
            out["basic_skills"] = [
                _drop_none({"code": b.code, "name": dict(b.name), "description": b.description})
                for b in self.basic_skills
            ]
        if self.overall_rule is not None:
            out["overall"] = {"rule": self.overall_rule}
            if self.overall_weights is not None:
                out["overall"]["weights"] = {k: _number(v) for k, v in self.overall_weights}
        return out

    def basic_skill(self, code: str) -> BasicSkill:
        for b in self.basic_skills:
            if b.code == code:
                return b
        raise KeyError(f"basic skill {code!r} is not in the framework")

    def area(self, code: str) -> Area:
        for a in self.areas:
            if a.code == code:
                return a
        raise KeyError(f"area {code!r} is not in the framework")

    def competence(self, code: str) -> Competence:
        for c in self.competences:
            if c.code == code:
                return c
        raise KeyError(f"competence {code!r} is not in the framework")

    def competences_of(self, area: str) -> tuple[Competence, ...]:
        return tuple(c for c in self.competences if c.area == area)

    def level_of(self, score: float) -> LevelBand:
        """The band holding ``score``; a band's lower bound belongs to it."""
        if not self.levels:
            raise ValueError("the framework has no levels")
        for band in reversed(self.levels):
            if score >= band.lower:
                return band
        return self.levels[0]


def _number(x: float) -> float | int:
    """Whole numbers as ints in framework bounds (0, 20, ...) so files stay readable."""
    return int(x) if float(x).is_integer() else float(x)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}


# --------------------------------------------------------------------------- items
@dataclass(frozen=True)
class ItemRecord:
    """One item (criterion) of a bank, as in the file.

    ``thresholds`` is the engine's form for every model: ``(b,)`` for 2pl/3pl
    items, the ordered boundaries of grm items and the step parameters of
    gpcm/pcm items. ``c`` is None except on
    3pl items. ``key`` is the 0-based index of the correct option of a
    multiple-choice item. ``ksa`` is None in a bare bank that does not say.
    """

    id: str
    area: str
    model: str
    a: float
    thresholds: tuple[float, ...]
    b: float | None = None
    c: float | None = None
    competence: str | None = None
    ksa: str | None = None
    level: int | None = None
    status: str = "operational"
    status_reason: str | None = None
    text: Text | None = None
    options: tuple[Text, ...] = ()
    key: int | None = None
    se: dict[str, Any] | None = None
    goal: Text | None = None
    basic_skills: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ItemRecord:
        """Build from one (validated) item object of a bank file."""
        model = d["model"]
        b = float(d["b"]) if model not in POLYTOMOUS else None
        thresholds = (b,) if b is not None else tuple(float(t) for t in d["thresholds"])
        return cls(
            id=d["id"],
            area=d["area"],
            model=model,
            # 1PL and PCM items share one a; without one it is the Rasch scale's 1.
            a=float(d.get("a", 1.0)),
            thresholds=thresholds,
            b=b,
            c=float(d["c"]) if model == "3pl" else None,
            competence=d.get("competence"),
            ksa=d.get("ksa"),
            level=d.get("level"),
            status=d.get("status", "operational"),
            status_reason=d.get("status_reason"),
            text=_text(d.get("text")),
            options=tuple(_text(o) for o in d.get("options", ())),
            key=d.get("key"),
            se=copy.deepcopy(d["se"]) if "se" in d else None,
            goal=_text(d.get("goal")),
            basic_skills=tuple(d.get("basic_skills", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """The item object of a bank file (fields in a fixed, readable order)."""
        out: dict[str, Any] = {"id": self.id, "area": self.area}
        if self.competence is not None:
            out["competence"] = self.competence
        if self.ksa is not None:
            out["ksa"] = self.ksa
        if self.level is not None:
            out["level"] = self.level
        if self.basic_skills:
            out["basic_skills"] = list(self.basic_skills)
        out["model"] = self.model
        out["a"] = self.a
        if self.model in POLYTOMOUS:
            out["thresholds"] = list(self.thresholds)
        else:
            out["b"] = self.b
        if self.model == "3pl":
            out["c"] = self.c
        if self.se is not None:
            out["se"] = copy.deepcopy(self.se)
        out["status"] = self.status
        if self.status_reason is not None:
            out["status_reason"] = self.status_reason
        if self.text is not None:
            out["text"] = dict(self.text)
        if self.goal is not None:
            out["goal"] = dict(self.goal)
        if self.options:
            out["options"] = [dict(o) for o in self.options]
        if self.key is not None:
            out["key"] = self.key
        return out

    @property
    def kind(self) -> str:
        """knowledge / skill / attitude; a bare item's kind follows its model (as in the engine)."""
        if self.ksa is not None:
            return self.ksa
        return "skill" if self.model in POLYTOMOUS else "knowledge"

    @property
    def n_categories(self) -> int:
        """Number of score categories (2 for dichotomous items)."""
        return len(self.thresholds) + 1

    @property
    def operational(self) -> bool:
        return self.status == "operational"

    def score_option(self, option: int) -> int:
        """The item score (0..n_categories-1) of choosing option ``option`` (0-based).

        Multiple-choice items score 1 for the key and 0 otherwise; items
        without a key (graded, or two ordered options) score the option's
        position.
        """
        n_options = len(self.options) if self.options else self.n_categories
        if isinstance(option, bool) or not isinstance(option, int) or not 0 <= option < n_options:
            raise ValueError(
                f"item {self.id}: option must be a whole number 0..{n_options - 1} (got {option!r})"
            )
        if self.key is not None:
            return int(option == self.key)
        return option


# --------------------------------------------------------------------------- documents
def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, UTF-8 characters as is, no NaN."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def content_hash(framework: Mapping[str, Any] | None, items: Iterable[Mapping[str, Any]]) -> str:
    """sha256 (hex) of the canonical JSON of ``{"framework": ..., "items": [...]}``.

    Both arguments are in their normalised file form (``Framework.to_dict``,
    ``ItemRecord.to_dict``), so the hash does not depend on key order,
    whitespace or NFC/NFD spelling of the file.
    """
    payload = {"framework": framework, "items": list(items)}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


_ITEM_BANK_CACHE: OrderedDict[tuple[str, str], ItemBank] = OrderedDict()
_ITEM_BANK_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class BankDocument:
    """A validated bank file.

    Attributes
    ----------
    version, parent : str, str or None
        This version's id and the version it was derived from.
    status : str
        ``provisional`` (parameters set by rule), ``calibrated`` (fitted to
        responses) or ``draft`` (not published; may still change).
    created : str or None
        ISO 8601 time the version was made.
    framework : Framework or None
        None for a bare bank.
    items : tuple of ItemRecord
    metadata : dict
        Free-form; ``content_hash`` is always the hash of this content.
    """

    version: str
    items: tuple[ItemRecord, ...]
    parent: str | None = None
    status: str = "draft"
    created: str | None = None
    framework: Framework | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    declared_hash: str | None = field(default=None, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _hash: str = field(init=False, repr=False, compare=False)
    _item_bank: ItemBank | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {item.id: i for i, item in enumerate(self.items)})
        framework = self.framework.to_dict() if self.framework is not None else None
        digest = content_hash(framework, (item.to_dict() for item in self.items))
        object.__setattr__(self, "_hash", digest)
        metadata = copy.deepcopy(dict(self.metadata))
        metadata["content_hash"] = digest
        object.__setattr__(self, "metadata", metadata)

    # ------------------------------------------------------------- queries
    @property
    def content_hash(self) -> str:
        """sha256 of this bank's framework and items (see :func:`content_hash`)."""
        return self._hash

    @property
    def hash_matches(self) -> bool:
        """False when the file declared a content hash that its content no longer has."""
        return self.declared_hash is None or self.declared_hash == self._hash

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def item(self, item_id: str) -> ItemRecord:
        """The item ``item_id``; ``KeyError`` with a clear message if absent."""
        try:
            return self.items[self._index[item_id]]
        except KeyError:
            raise KeyError(f"item {item_id!r} is not in bank {self.version}") from None

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __len__(self) -> int:
        return len(self.items)

    @property
    def area_codes(self) -> tuple[str, ...]:
        """Areas that have items: in framework order, else in natural order of their codes."""
        present = {item.area for item in self.items}
        if self.framework is not None:
            return tuple(a.code for a in self.framework.areas if a.code in present)
        return tuple(sorted(present, key=_natural_key))

    @property
    def item_bank(self) -> ItemBank:
        """The engine's array form, built once per (version, content hash) and shared."""
        if self._item_bank is not None:
            return self._item_bank
        key = (self.version, self._hash)
        with _CACHE_LOCK:
            bank = _ITEM_BANK_CACHE.get(key)
            if bank is not None:
                _ITEM_BANK_CACHE.move_to_end(key)
                object.__setattr__(self, "_item_bank", bank)
                return bank
        bank = ItemBank.from_items(
            version=self.version,
            item_ids=[item.id for item in self.items],
            areas=[item.area for item in self.items],
            models=[item.model for item in self.items],
            discrimination=[item.a for item in self.items],
            thresholds=[list(item.thresholds) for item in self.items],
            guessing=[item.c or 0.0 for item in self.items],
            competences=[item.competence or "" for item in self.items],
            basic_skills=[item.basic_skills for item in self.items],
            kinds=[item.kind for item in self.items],
            operational=[item.operational for item in self.items],
            area_codes=self.area_codes,
            scale=self.framework.scale if self.framework is not None else None,
        )
        with _CACHE_LOCK:
            # Another thread may have built it meanwhile: keep the first so all callers share one object.
            bank = _ITEM_BANK_CACHE.setdefault(key, bank)
            _ITEM_BANK_CACHE.move_to_end(key)
            while len(_ITEM_BANK_CACHE) > _ITEM_BANK_CACHE_SIZE:
                _ITEM_BANK_CACHE.popitem(last=False)
        # The document keeps its own reference, so it returns one object even after eviction.
        object.__setattr__(self, "_item_bank", bank)
        return bank

    # -------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        """The bank file's JSON object (DESIGN §3), normalised."""
        out: dict[str, Any] = {
            "version": self.version,
            "parent": self.parent,
            "status": self.status,
        }
        if self.created is not None:
            out["created"] = self.created
        out["metadata"] = copy.deepcopy(self.metadata)
        if self.framework is not None:
            out["framework"] = self.framework.to_dict()
        out["items"] = [item.to_dict() for item in self.items]
        return out

    def to_json(self) -> str:
        """The bank file's text: 2-space indented UTF-8 JSON with a final newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _natural_key(code: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(code).split("."))


def _duplicate_keys_hook(found: list[str]):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                found.append(key)
            out[key] = value
        return out

    return hook


def bank_from_dict(d: Any) -> BankDocument:
    """Validate a bank document (parsed JSON) and build a :class:`BankDocument`.

    Strings are normalised to NFC. A missing ``version`` becomes
    ``"unversioned-<first 12 hex digits of the content hash>"`` so that bare
    banks load; a missing ``status`` means ``draft``.

    Raises
    ------
    BankError
        With every problem found (``.problems``).
    """
    # Normalise first so that ids spelled in NFC and NFD count as duplicates.
    d = nfc(d)
    problems = validate_document(d)
    if problems:
        raise BankError(problems)
    framework = Framework.from_dict(d["framework"]) if "framework" in d else None
    items = tuple(ItemRecord.from_dict(item) for item in d["items"])
    metadata = copy.deepcopy(d.get("metadata", {}))
    declared = metadata.get("content_hash")
    version = d.get("version")
    if version is None:
        fw = framework.to_dict() if framework is not None else None
        version = "unversioned-" + content_hash(fw, (i.to_dict() for i in items))[:12]
    return BankDocument(
        version=version,
        items=items,
        parent=d.get("parent"),
        status=d.get("status", "draft"),
        created=d.get("created"),
        framework=framework,
        metadata=metadata,
        declared_hash=declared,
    )


def read_json(path: str | Path, what: str = "bank file") -> Any:
    """Parse a JSON file, turning every way it can fail into a :class:`BankFileError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BankFileError([Problem(None, f"{what} not found: {path}")], what=str(path)) from None
    except IsADirectoryError:
        raise BankFileError(
            [Problem(None, f"{path} is a directory, not a {what}")], what=str(path)
        ) from None
    except OSError as exc:
        raise BankFileError(
            [Problem(None, f"cannot read {path}: {exc.strerror or exc}")], what=str(path)
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BankFileError(
            [Problem(None, f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8")],
            what=str(path),
        ) from None
    duplicates: list[str] = []
    try:
        value = json.loads(text, object_pairs_hook=_duplicate_keys_hook(duplicates))
    except json.JSONDecodeError as exc:
        raise BankFileError(
            [
                Problem(
                    None,
                    f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                )
            ],
            what=str(path),
        ) from None
    except RecursionError:
        raise BankFileError(
            [Problem(None, f"{path} is nested too deeply to be a {what}")], what=str(path)
        ) from None
    if duplicates:
        shown = ", ".join(sorted(set(duplicates)))
        raise BankFileError(
            [
                Problem(
                    None,
                    f"{path} repeats keys inside one object ({shown}); JSON keeps only the last",
                )
            ],
            what=str(path),
        )
    return value


_LOAD_CACHE: OrderedDict[tuple[str, int, int, int], BankDocument] = OrderedDict()


def load_bank(path: str | Path | None = None) -> BankDocument:
    """Load and validate a bank file.

    Parameters
    ----------
    path : str or Path, optional
        The bank file; None loads the shipped default bank ``items/data/bank.json``.

    Returns
    -------
    BankDocument
        The same object again while the file is unchanged (same inode, size
        and modification time), so a service may call this per request.

    Raises
    ------
    BankError
        With every problem found; :class:`BankFileError` (a subclass) when the
        file is missing or not JSON at all.
    """
    path = Path(DEFAULT_BANK_PATH if path is None else path).resolve()
    try:
        stat = path.stat()
        key: tuple[str, int, int, int] | None = (
            str(path),
            stat.st_ino,
            stat.st_mtime_ns,
            stat.st_size,
        )
    except OSError:
        key = None
    if key is not None:
        with _CACHE_LOCK:
            cached = _LOAD_CACHE.get(key)
        if cached is not None:
            return cached
    data = read_json(path)
    try:
        doc = bank_from_dict(data)
    except BankError as exc:
        raise BankError(exc.problems, what=str(path)) from None
    if key is not None:
        with _CACHE_LOCK:
            _LOAD_CACHE[key] = doc
            while len(_LOAD_CACHE) > _ITEM_BANK_CACHE_SIZE:
                _LOAD_CACHE.popitem(last=False)
    return doc


def load_framework(path: str | Path | None = None) -> Framework:
    """Load and validate a framework file (the shipped ``items/data/framework.json`` by default)."""
    from nangluc.items.schema import _framework_problems

    path = Path(FRAMEWORK_PATH if path is None else path)
    data = read_json(path, what="framework file")
    problems, _ = _framework_problems(data)
    if problems:
        raise BankError(problems, what=str(path))
    return Framework.from_dict(nfc(data))


def utc_now() -> str:
    """The current UTC time as ISO 8601 with a Z, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_version(
    doc: BankDocument,
    *,
    version: str,
    items: Iterable[ItemRecord | Mapping[str, Any]] | None = None,
    status: str | None = None,
    framework: Framework | Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    created: str | None = None,
) -> BankDocument:
    """A child version of ``doc``: ``parent = doc.version``, new items and/or status.

    Parameters
    ----------
    doc : BankDocument
        The version this one is derived from.
    version : str
        The new version id; must differ from ``doc.version``.
    items : iterable of ItemRecord or item dicts, optional
        The new items (default: ``doc``'s).
    status, framework, metadata : optional
        Replace ``doc``'s (metadata is merged over ``doc``'s, minus its hash).
    created : str, optional
        ISO 8601 time; default now.

    Raises
    ------
    BankError
        If the result is not a valid bank (e.g. ``version`` equals the parent).
    """
    d = doc.to_dict()
    d["version"] = version
    d["parent"] = doc.version
    d["created"] = created or utc_now()
    if status is not None:
        d["status"] = status
    if framework is not None:
        d["framework"] = (
            framework.to_dict() if isinstance(framework, Framework) else dict(framework)
        )
    merged = {k: v for k, v in d["metadata"].items() if k != "content_hash"}
    merged.update(copy.deepcopy(dict(metadata or {})))
    d["metadata"] = merged
    if items is not None:
        d["items"] = [i.to_dict() if isinstance(i, ItemRecord) else dict(i) for i in items]
    return bank_from_dict(d)


def write_bank(doc: BankDocument | Mapping[str, Any], path: str | Path) -> BankDocument:
    """Validate and write a bank file atomically (temporary file, fsync, rename).

    The file never exists half-written: either the old content or the new
    one. ``metadata.content_hash`` is set to the content's hash.

    Raises
    ------
    BankError
        If ``doc`` is invalid, or ``path`` already holds the same version with
        different content (published versions are immutable; make a new one
        with :func:`new_version`). Draft versions may be rewritten.
    """
    if not isinstance(doc, BankDocument):
        doc = bank_from_dict(dict(doc))
    path = Path(path)
    if path.exists():
        try:
            existing = bank_from_dict(read_json(path))
        except BankError as exc:
            raise BankError(
                [Problem(None, f"{path} exists and is not a valid bank; refusing to overwrite it")]
                + list(exc.problems)[:5],
                heading=f"cannot write {path}",
            ) from None
        same_version = existing.version == doc.version
        if (
            same_version
            and existing.content_hash != doc.content_hash
            and not (existing.status == "draft" and doc.status == "draft")
        ):
            raise BankError(
                [
                    Problem(
                        None,
                        f"{path} already holds version {doc.version} with different content "
                        f"({existing.content_hash[:12]} ≠ {doc.content_hash[:12]}); published versions "
                        f"are immutable: give the new content a new version whose parent is {doc.version}",
                    )
                ],
                heading=f"cannot write {path}",
            )
    atomic_write(path, doc.to_json().encode("utf-8"))
    return doc


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    Readers see either the old file or the new one, never a partial write;
    on any error the temporary file is removed and the old file is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp creates the file readable by its owner only; a bank file is for everyone to read.
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
