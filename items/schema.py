"""The bank file format (DESIGN §3) and its validator.

A bank file is one JSON object::

    {"version": "2024.10-p1", "parent": null, "status": "provisional",
     "created": "2026-11-22T06:00:00Z",
     "framework": {"areas": [...], "competences": [...], "levels": [...]},
     "metadata": {"content_hash": "…", "parameter_source": {...}},
     "items": [{"id": "1.1.01", "area": "1", "competence": "1.1",
                "ksa": "knowledge", "level": 2, "model": "3pl",
                "a": 1.2, "b": -0.9, "c": 0.25, "status": "operational",
                "text": {"vi": "…", "en": "…"},
                "options": [{"vi": "…", "en": "…"}, ...], "key": 1}]}

Only ``items`` is required, and each item only needs ``id``, ``area``,
``model`` and its parameters (``a`` plus ``b`` for 2pl/3pl, ``c`` for 3pl,
``thresholds`` for grm/gpcm; ``b`` for 1pl and ``thresholds`` for pcm, whose
shared ``a`` defaults to 1, the Rasch scale): that is a *bare* bank, which must load as well as a
full one. The framework checks (areas, competences, levels exist) and the
"every item has Vietnamese text" check apply only when a framework is given.

:data:`BANK_SCHEMA` is the same format as a JSON Schema (draft 2020-12),
shipped as ``items/bank.schema.json`` for other tools. It checks structure;
:func:`validate_document` checks structure *and* meaning (ordered thresholds,
unique ids, keys in range, codes present in the framework) and returns every
problem it finds with the id of the item concerned, never only the first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MODELS: tuple[str, ...] = ("2pl", "3pl", "grm", "1pl", "gpcm", "pcm")
#: Models with one difficulty b (dichotomous) and with ordered score categories.
DICHOTOMOUS: tuple[str, ...] = ("2pl", "3pl", "1pl")
POLYTOMOUS: tuple[str, ...] = ("grm", "gpcm", "pcm")
#: Models whose ``a`` may be omitted: it is shared by all their items, 1 (Rasch) by default.
OPTIONAL_DISCRIMINATION: tuple[str, ...] = ("1pl", "pcm")
KSA: tuple[str, ...] = ("knowledge", "skill", "attitude")
ITEM_STATUSES: tuple[str, ...] = ("operational", "pretest")
BANK_STATUSES: tuple[str, ...] = ("provisional", "calibrated", "draft")
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"

TOP_LEVEL_KEYS = (
    "$schema",
    "version",
    "parent",
    "status",
    "created",
    "framework",
    "metadata",
    "items",
)
ITEM_KEYS = (
    "id",
    "area",
    "competence",
    "ksa",
    "level",
    "model",
    "a",
    "b",
    "c",
    "thresholds",
    "se",
    "status",
    "status_reason",
    "text",
    "options",
    "key",
    "goal",
    "basic_skills",
)
SE_KEYS = ("a", "b", "c", "thresholds")
_VERSION_RE = re.compile(VERSION_PATTERN)
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bank (or a spreadsheet row).

    Attributes
    ----------
    item_id : str or None
        The item concerned; None for problems of the whole document.
    message : str
        What is wrong, in words a content editor understands.
    row : int or None
        Spreadsheet row number (the header is row 1) for CSV imports.
    """

    item_id: str | None
    message: str
    row: int | None = None

    def __str__(self) -> str:
        if self.row is not None:
            where = f"row {self.row}" + (f" (item {self.item_id})" if self.item_id else "")
            return f"{where}: {self.message}"
        if self.item_id is not None:
            return f"item {self.item_id}: {self.message}"
        return self.message


class BankError(ValueError):
    """A bank (or spreadsheet) that cannot be used; ``.problems`` lists why."""

    def __init__(
        self,
        problems: list[Problem] | tuple[Problem, ...],
        what: str = "the bank",
        *,
        heading: str | None = None,
    ) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        lines = [f"{heading or what + ' is invalid'} ({n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  {p}" for p in self.problems[:50]]
        if n > 50:
            lines.append(f"  … and {n - 50} more")
        super().__init__("\n".join(lines))


class BankFileError(BankError):
    """A bank file that cannot be read at all (missing, not UTF-8, not JSON)."""


# --------------------------------------------------------------------------- JSON Schema
_TEXT = {
    "type": "object",
    "properties": {"vi": {"type": "string", "minLength": 1}, "en": {"type": "string"}},
    "required": ["vi"],
    "additionalProperties": False,
}
_NUMBER = {"type": "number"}

BANK_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/nangluc/nangluc/items/bank.schema.json",
    "title": "nangluc item bank",
    "description": (
        "An item bank for the nangluc adaptive test (DESIGN §3). Only `items` is required; "
        "each item needs id, area, model and its IRT parameters (logistic, D = 1, a(θ − b)). "
        "Cross-field rules that JSON Schema cannot express (ordered thresholds, unique ids, "
        "key in range, codes present in the framework) are checked by items.validate_document."
    ),
    "type": "object",
    "properties": {
        "$schema": {"type": "string"},
        "version": {"type": "string", "pattern": VERSION_PATTERN},
        "parent": {"type": ["string", "null"], "pattern": VERSION_PATTERN},
        "status": {"enum": list(BANK_STATUSES)},
        "created": {"type": "string", "description": "ISO 8601 date-time"},
        "metadata": {
            "type": "object",
            "properties": {
                "content_hash": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{64}$",
                    "description": "sha256 of the canonical JSON of {framework, items}",
                },
                "parameter_source": {"description": "how the item parameters were obtained"},
            },
        },
        "framework": {"$ref": "#/$defs/framework"},
        "items": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/item"}},
    },
    "required": ["items"],
    "additionalProperties": False,
    "$defs": {
        "text": _TEXT,
        "framework": {
            "type": "object",
            "properties": {
                "name": {"$ref": "#/$defs/text"},
                "source": {"$ref": "#/$defs/text"},
                "areas": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "minLength": 1},
                            "name": {"$ref": "#/$defs/text"},
                            "description": {"$ref": "#/$defs/text"},
                        },
                        "required": ["code", "name"],
                        "additionalProperties": False,
                    },
                },
                "competences": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "minLength": 1},
                            "area": {"type": "string", "minLength": 1},
                            "name": {"$ref": "#/$defs/text"},
                            "description": {"$ref": "#/$defs/text"},
                        },
                        "required": ["code", "area", "name"],
                        "additionalProperties": False,
                    },
                },
                "basic_skills": {
                    "type": "array",
                    "description": "skills a city teaches every citizen (items name them by code)",
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "string", "minLength": 1},
                            "name": {"$ref": "#/$defs/text"},
                            "description": {"$ref": "#/$defs/text"},
                        },
                        "required": ["code", "name"],
                        "additionalProperties": False,
                    },
                },
                "levels": {
                    "type": "array",
                    "minItems": 2,
                    "description": (
                        "the proficiency levels in increasing order: bands [lower, upper) of "
                        "the 0-100 score (the last includes 100), the first starting at 0, each "
                        "starting where the one before ends, the last ending at 100; codes are "
                        "unique whole numbers increasing with the band. Without levels, the "
                        "Đà Nẵng framework's five 20-point bands apply"
                    ),
                    "items": {
                        "type": "object",
                        "properties": {
                            "code": {"type": "integer"},
                            "name": {"$ref": "#/$defs/text"},
                            "description": {"$ref": "#/$defs/text"},
                            "lower": _NUMBER,
                            "upper": _NUMBER,
                        },
                        "required": ["code", "name", "lower", "upper"],
                        "additionalProperties": False,
                    },
                },
                "overall": {
                    "type": "object",
                    "description": (
                        "how the area scores make the overall score: the plain mean of the "
                        "scored areas ({'rule': 'mean'}, the default) or their weighted "
                        "mean ({'rule': 'weighted', 'weights': {area code: weight > 0}}, "
                        "one weight per area; a test of some areas renormalises the weights "
                        "over them)"
                    ),
                    "properties": {
                        "rule": {"enum": ["mean", "weighted"]},
                        "weights": {
                            "type": "object",
                            "additionalProperties": {"type": "number", "exclusiveMinimum": 0},
                        },
                    },
                    "required": ["rule"],
                    "additionalProperties": False,
                },
            },
            "required": ["areas"],
            "additionalProperties": False,
        },
        "item": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "area": {"type": "string", "minLength": 1},
                "competence": {"type": "string", "minLength": 1},
                "ksa": {"enum": list(KSA)},
                "level": {"type": "integer", "minimum": 1},
                "model": {"enum": list(MODELS)},
                "a": {"type": "number", "exclusiveMinimum": 0},
                "b": _NUMBER,
                "c": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "thresholds": {"type": "array", "minItems": 1, "items": _NUMBER},
                "se": {
                    "type": "object",
                    "description": "standard errors of the estimates (calibrated banks)",
                    "properties": {
                        "a": {"type": ["number", "null"], "minimum": 0},
                        "b": {"type": ["number", "null"], "minimum": 0},
                        "c": {"type": ["number", "null"], "minimum": 0},
                        "thresholds": {
                            "type": "array",
                            "items": {"type": ["number", "null"], "minimum": 0},
                        },
                    },
                    "additionalProperties": False,
                },
                "status": {"enum": list(ITEM_STATUSES)},
                "status_reason": {
                    "type": "string",
                    "minLength": 1,
                    "description": "why the item has its status (set by calibration for pretest items)",
                },
                "text": {"$ref": "#/$defs/text"},
                "options": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/text"}},
                "key": {"type": "integer", "minimum": 0},
                "goal": {
                    "$ref": "#/$defs/text",
                    "description": "the criterion as a learning goal (what a citizen learns next)",
                },
                "basic_skills": {
                    "type": "array",
                    "uniqueItems": True,
                    "items": {"type": "string", "minLength": 1},
                    "description": "codes of the framework's basic skills the criterion belongs to",
                },
            },
            "required": ["id", "area", "model"],
            "additionalProperties": False,
            "allOf": [
                {
                    "if": {"properties": {"model": {"enum": ["2pl", "3pl", "grm", "gpcm"]}}},
                    "then": {"required": ["a"]},
                },
                {
                    "if": {"properties": {"model": {"enum": ["2pl", "1pl"]}}},
                    "then": {
                        "required": ["b"],
                        "not": {"anyOf": [{"required": ["c"]}, {"required": ["thresholds"]}]},
                    },
                },
                {
                    "if": {"properties": {"model": {"const": "3pl"}}},
                    "then": {"required": ["b", "c"], "not": {"required": ["thresholds"]}},
                },
                {
                    "if": {"properties": {"model": {"enum": list(POLYTOMOUS)}}},
                    "then": {
                        "required": ["thresholds"],
                        "not": {
                            "anyOf": [
                                {"required": ["b"]},
                                {"required": ["c"]},
                                {"required": ["key"]},
                            ]
                        },
                    },
                },
            ],
        },
    },
}


# --------------------------------------------------------------------------- validator
def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_finite(x: Any) -> bool:
    return _is_number(x) and math.isfinite(x)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _show(x: Any) -> str:
    """A value as the user wrote it, shortened."""
    text = repr(x) if isinstance(x, str) else _json_like(x)
    return text if len(text) <= 40 else text[:37] + "…"


def _json_like(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, dict):
        return "an object"
    if isinstance(x, list):
        return "a list"
    return str(x)


def _text_problems(value: Any, field: str, *, required_vi: bool = True) -> list[str]:
    """Problems of a ``{"vi": ..., "en": ...}`` text object, as messages."""
    if not isinstance(value, dict):
        return [f'{field} must be an object {{"vi": …, "en": …}} (got {_show(value)})']
    out = []
    unknown = sorted(set(value) - {"vi", "en"})
    if unknown:
        out.append(f"{field} has unknown language keys: {', '.join(unknown)} (expected vi, en)")
    vi = value.get("vi")
    if vi is None:
        if required_vi:
            out.append(f"{field} is missing the Vietnamese text (vi)")
    elif not isinstance(vi, str) or not vi.strip():
        out.append(f"{field}.vi must be non-empty text (got {_show(vi)})")
    en = value.get("en")
    if en is not None and not isinstance(en, str):
        out.append(f"{field}.en must be text (got {_show(en)})")
    return out


def _version_problems(d: dict) -> list[Problem]:
    out: list[Problem] = []
    version = d.get("version")
    if "version" in d and not (isinstance(version, str) and _VERSION_RE.match(version)):
        out.append(
            Problem(
                None,
                f'version must be 1-64 letters, digits or . _ + - such as "2024.10-p1" (got {_show(version)})',
            )
        )
    parent = d.get("parent")
    if parent is not None:
        if not (isinstance(parent, str) and _VERSION_RE.match(parent)):
            out.append(Problem(None, f"parent must be null or a version id (got {_show(parent)})"))
        elif parent == version:
            out.append(Problem(None, f"parent must differ from version (both are {parent!r})"))
    if "status" in d and d["status"] not in BANK_STATUSES:
        out.append(
            Problem(
                None,
                f"bank status must be one of {', '.join(BANK_STATUSES)} (got {_show(d['status'])})",
            )
        )
    if "created" in d:
        created = d["created"]
        ok = isinstance(created, str)
        if ok:
            try:
                datetime.fromisoformat(created)
            except ValueError:
                ok = False
        if not ok:
            out.append(
                Problem(
                    None,
                    f"created must be an ISO 8601 date-time such as 2026-11-22T06:00:00Z (got {_show(created)})",
                )
            )
    if "metadata" in d:
        metadata = d["metadata"]
        if not isinstance(metadata, dict):
            out.append(Problem(None, f"metadata must be an object (got {_show(metadata)})"))
        elif "content_hash" in metadata and not (
            isinstance(metadata["content_hash"], str) and _HASH_RE.match(metadata["content_hash"])
        ):
            out.append(
                Problem(
                    None,
                    f"metadata.content_hash must be 64 lowercase hex digits (got {_show(metadata['content_hash'])})",
                )
            )
    return out


@dataclass(frozen=True)
class _FrameworkCodes:
    areas: tuple[str, ...]
    competence_area: dict[str, str]
    levels: tuple[int, ...]
    basic_skills: tuple[str, ...] = ()


def _framework_problems(fw: Any) -> tuple[list[Problem], _FrameworkCodes | None]:
    """Problems of the framework and the codes items may refer to."""
    if not isinstance(fw, dict):
        return [Problem(None, f"framework must be an object (got {_show(fw)})")], None
    out: list[Problem] = []

    def say(message: str) -> None:
        out.append(Problem(None, f"framework: {message}"))

    unknown = sorted(
        set(fw) - {"name", "source", "areas", "competences", "levels", "basic_skills", "overall"}
    )
    if unknown:
        say(f"unknown fields: {', '.join(unknown)}")
    for field in ("name", "source"):
        if field in fw:
            for m in _text_problems(fw[field], field):
                say(m)

    def entries(field: str, required: bool) -> list:
        value = fw.get(field)
        if value is None:
            if required:
                say(f"{field} is missing (a list of at least one entry)")
            return []
        if not isinstance(value, list) or (required and not value):
            say(f"{field} must be a non-empty list (got {_show(value)})")
            return []
        return value

    def coded(field: str, noun: str, required: bool, extra_keys: tuple[str, ...] = ()):
        """(code, entry) of each well-formed entry of a list of named, coded objects."""
        seen: list[str] = []
        for i, entry in enumerate(entries(field, required)):
            where = f"{field}[{i}]"
            if not isinstance(entry, dict):
                say(f"{where} must be an object (got {_show(entry)})")
                continue
            code = entry.get("code")
            if not (isinstance(code, str) and code.strip()):
                say(f"{where}.code must be non-empty text (got {_show(code)})")
                continue
            where = f"{noun} {code}"
            if code in seen:
                say(f"duplicate {noun} code {code!r}")
            seen.append(code)
            for m in _text_problems(entry.get("name"), f"{where} name"):
                say(m)
            if "description" in entry:
                for m in _text_problems(entry["description"], f"{where} description"):
                    say(m)
            extra = sorted(set(entry) - {"code", "name", "description", *extra_keys})
            if extra:
                say(f"{where} has unknown fields: {', '.join(extra)}")
            yield code, entry

    areas = [code for code, _ in coded("areas", "area", True)]
    competence_area: dict[str, str] = {}
    for code, comp in coded("competences", "competence", False, ("area",)):
        area = comp.get("area")
        if area not in areas:
            say(f"competence {code} belongs to area {_show(area)}, which is not in the framework")
        competence_area[code] = area if isinstance(area, str) else ""
    basic_skills = [code for code, _ in coded("basic_skills", "basic skill", False)]

    levels: list[int] = []
    bounds: list[tuple[float, float]] = []
    for i, level in enumerate(entries("levels", False)):
        where = f"levels[{i}]"
        if not isinstance(level, dict):
            say(f"{where} must be an object (got {_show(level)})")
            continue
        code = level.get("code")
        if not _is_int(code):
            say(f"{where}.code must be a whole number (got {_show(code)})")
            continue
        where = f"level {code}"
        if code in levels:
            say(f"duplicate level code {code}")
        levels.append(code)
        for m in _text_problems(level.get("name"), f"{where} name"):
            say(m)
        if "description" in level:
            for m in _text_problems(level["description"], f"{where} description"):
                say(m)
        lower, upper = level.get("lower"), level.get("upper")
        if not (_is_finite(lower) and _is_finite(upper) and lower < upper):
            say(f"{where} needs numbers lower < upper (got {_show(lower)}, {_show(upper)})")
        else:
            bounds.append((float(lower), float(upper)))
        extra = sorted(set(level) - {"code", "name", "description", "lower", "upper"})
        if extra:
            say(f"{where} has unknown fields: {', '.join(extra)}")
    if levels and levels != sorted(levels):
        say("levels must be listed in increasing order of code")
    if "levels" in fw and isinstance(fw["levels"], list) and len(fw["levels"]) < 2:
        say(f"levels must list at least 2 levels (got {len(fw['levels'])})")
    for (_, upper), (lower, _) in zip(bounds, bounds[1:], strict=False):
        if lower != upper:
            say(
                f"level bands must be contiguous and increasing (a band ends at {upper:g}, the next starts at {lower:g})"
            )
    if bounds and len(bounds) == len(levels):
        if bounds[0][0] != 0:
            say(f"levels[0].lower must be 0, the bottom of the score scale (got {bounds[0][0]:g})")
        if bounds[-1][1] != 100:
            say(
                f"levels[{len(bounds) - 1}].upper must be 100, the top of the score scale "
                f"(got {bounds[-1][1]:g})"
            )
    if "overall" in fw:
        for m in _overall_problems(fw["overall"], areas):
            say(m)
    return out, _FrameworkCodes(tuple(areas), competence_area, tuple(levels), tuple(basic_skills))


def _overall_problems(overall: Any, areas: list[str]) -> list[str]:
    """Problems of the framework's overall rule (``framework.overall``), as messages."""
    if not isinstance(overall, dict):
        return [f"overall must be an object such as {{'rule': 'mean'}} (got {_show(overall)})"]
    out: list[str] = []
    unknown = sorted(set(overall) - {"rule", "weights"})
    if unknown:
        out.append(f"overall has unknown fields: {', '.join(unknown)} (allowed: rule, weights)")
    rule = overall.get("rule")
    if rule not in ("mean", "weighted"):
        out.append(f"overall.rule must be 'mean' or 'weighted' (got {_show(rule)})")
        return out
    weights = overall.get("weights")
    if rule == "mean":
        if weights is not None:
            out.append("overall.weights is only allowed with rule 'weighted'")
        return out
    if not isinstance(weights, dict) or not weights:
        out.append(
            f"overall.weights must be an object of area code to weight for rule 'weighted' (got {_show(weights)})"
        )
        return out
    for code, weight in weights.items():
        if code not in areas:
            out.append(f"overall.weights names area {code!r}, which is not in the framework")
        elif not (_is_finite(weight) and weight > 0):
            out.append(f"overall.weights[{code!r}] must be a positive number (got {_show(weight)})")
    missing = [code for code in areas if code not in weights]
    if missing:
        out.append(f"overall.weights has no weight for area(s) {', '.join(missing)} (one per area)")
    return out


def _item_problems(item: dict, label: str, fw: _FrameworkCodes | None) -> list[str]:
    """Problems of one item (an object), as messages."""
    out: list[str] = []
    unknown = sorted(set(item) - set(ITEM_KEYS))
    if unknown:
        out.append(f"unknown fields: {', '.join(unknown)} (allowed: {', '.join(ITEM_KEYS)})")

    area = item.get("area")
    if area is None:
        out.append("area is missing")
    elif not (isinstance(area, str) and area.strip()):
        out.append(f'area must be a code as text, such as "1" (got {_show(area)})')
    elif fw is not None and area not in fw.areas:
        out.append(f"area {area!r} is not in the framework (areas: {', '.join(fw.areas)})")

    if "competence" in item:
        comp = item["competence"]
        if not (isinstance(comp, str) and comp.strip()):
            out.append(f'competence must be a code as text, such as "1.1" (got {_show(comp)})')
        elif fw is not None:
            if comp not in fw.competence_area:
                out.append(f"competence {comp!r} is not in the framework")
            elif isinstance(area, str) and fw.competence_area[comp] != area:
                out.append(
                    f"competence {comp} belongs to area {fw.competence_area[comp]}, not area {area}"
                )

    ksa = item.get("ksa")
    if "ksa" in item and ksa not in KSA:
        out.append(f"ksa must be one of {', '.join(KSA)} (got {_show(ksa)})")

    if "level" in item:
        level = item["level"]
        allowed = fw.levels if fw is not None and fw.levels else (1, 2, 3, 4, 5)
        if not _is_int(level) or level not in allowed:
            out.append(f"level must be one of {', '.join(map(str, allowed))} (got {_show(level)})")

    if "status" in item and item["status"] not in ITEM_STATUSES:
        out.append(
            f"status must be one of {', '.join(ITEM_STATUSES)} (got {_show(item['status'])})"
        )
    if "status_reason" in item and not (
        isinstance(item["status_reason"], str) and item["status_reason"].strip()
    ):
        out.append(f"status_reason must be non-empty text (got {_show(item['status_reason'])})")

    # Parameters.
    model = item.get("model")
    if model is None:
        out.append(f"model is missing (one of {', '.join(MODELS)})")
    elif model not in MODELS:
        out.append(f"unknown model {_show(model)} (expected one of {', '.join(MODELS)})")
    a = item.get("a")
    if a is None:
        if model not in OPTIONAL_DISCRIMINATION:
            out.append("discrimination a is missing")
    elif not _is_finite(a) or a <= 0:
        out.append(f"discrimination a must be a finite number > 0 (got {_show(a)})")

    n_thresholds: int | None = None
    if model in DICHOTOMOUS:
        b = item.get("b")
        if b is None:
            out.append(f"difficulty b is missing (a {model} item needs b)")
        elif not _is_finite(b):
            out.append(f"difficulty b must be a finite number (got {_show(b)})")
        if "thresholds" in item:
            out.append(
                f"a {model} item has one difficulty b, not thresholds "
                "(use model grm, gpcm or pcm for ordered categories)"
            )
        n_thresholds = 1
    if model == "3pl":
        if "c" not in item:
            out.append("guessing c is missing (a 3pl item needs c; use 2pl for none)")
    elif "c" in item and model in MODELS:
        out.append(f"guessing c is only for 3pl items (this is a {model} item)")
    if "c" in item:
        c = item["c"]
        if not _is_finite(c) or not 0 <= c < 1:
            out.append(f"guessing c must lie in [0, 1) (got {_show(c)})")
    if model in POLYTOMOUS:
        if "b" in item:
            out.append(f"a {model} item has thresholds, not a single difficulty b")
        thresholds = item.get("thresholds")
        if thresholds is None:
            out.append(f"thresholds are missing (a {model} item needs at least one)")
        elif not isinstance(thresholds, list) or not thresholds:
            out.append(f"thresholds must be a non-empty list of numbers (got {_show(thresholds)})")
        elif not all(_is_finite(t) for t in thresholds):
            out.append(f"thresholds must be finite numbers (got {_show(thresholds)})")
        else:
            n_thresholds = len(thresholds)
            # GPCM/PCM step parameters may be in any order (reversed steps are legitimate).
            if model == "grm" and any(
                t1 <= t0 for t0, t1 in zip(thresholds, thresholds[1:], strict=False)
            ):
                shown = ", ".join(f"{t:g}" for t in thresholds)
                out.append(f"thresholds must be strictly increasing (got {shown})")

    if "se" in item:
        se = item["se"]
        if not isinstance(se, dict):
            out.append(f"se must be an object of standard errors (got {_show(se)})")
        else:
            extra = sorted(set(se) - set(SE_KEYS))
            if extra:
                out.append(f"se has unknown fields: {', '.join(extra)}")
            for key in ("a", "b", "c"):
                if key in se and se[key] is not None and not (_is_finite(se[key]) and se[key] >= 0):
                    out.append(f"se.{key} must be a number >= 0 or null (got {_show(se[key])})")
            if "thresholds" in se:
                ses = se["thresholds"]
                if not isinstance(ses, list) or not all(
                    s is None or (_is_finite(s) and s >= 0) for s in ses
                ):
                    out.append(
                        f"se.thresholds must be a list of numbers >= 0 or null (got {_show(ses)})"
                    )
                elif n_thresholds is not None and model in POLYTOMOUS and len(ses) != n_thresholds:
                    out.append(
                        f"se.thresholds has {len(ses)} entries for {n_thresholds} thresholds"
                    )

    if "goal" in item:
        out += _text_problems(item["goal"], "goal")
    if "basic_skills" in item:
        skills = item["basic_skills"]
        if not isinstance(skills, list) or not all(
            isinstance(code, str) and code.strip() for code in skills
        ):
            out.append(f"basic_skills must be a list of codes as text (got {_show(skills)})")
        elif len(set(skills)) != len(skills):
            out.append(f"basic_skills lists a code twice ({', '.join(skills)})")
        elif fw is not None:
            unknown_skills = [code for code in skills if code not in fw.basic_skills]
            if unknown_skills:
                known = ", ".join(fw.basic_skills) or "none"
                out.append(
                    f"basic skill(s) {', '.join(unknown_skills)} not in the framework (known: {known})"
                )

    # Text, options and key.
    if "text" in item:
        out += _text_problems(item["text"], "text")
    elif fw is not None:
        out.append(
            "text is missing (every item of a bank with a framework needs its Vietnamese text)"
        )
    options = item.get("options")
    n_options: int | None = None
    if "options" in item:
        if not isinstance(options, list) or len(options) < 2:
            out.append(f"options must be a list of at least 2 answers (got {_show(options)})")
        else:
            n_options = len(options)
            for j, option in enumerate(options):
                out += _text_problems(option, f"option {j + 1}")
    key = item.get("key")
    if "key" in item:
        if model in POLYTOMOUS:
            out.append(
                f"key is only for multiple-choice (1pl/2pl/3pl) items; {model} options are ordered scores"
            )
        elif not _is_int(key):
            out.append(f"key must be the 0-based index of the correct option (got {_show(key)})")
        elif n_options is None:
            if "options" not in item:
                out.append("key is given but the item has no options")
        elif not 0 <= key < n_options:
            out.append(
                f"key {key} is out of range: the item has {n_options} options (key 0..{n_options - 1})"
            )
    if n_options is not None:
        if model in POLYTOMOUS and n_thresholds is not None and n_options != n_thresholds + 1:
            out.append(
                f"a {model} item with {n_thresholds} thresholds needs {n_thresholds + 1} options (got {n_options})"
            )
        if model in DICHOTOMOUS and "key" not in item:
            if ksa == "knowledge" or model == "3pl":
                out.append(
                    f"a multiple-choice ({ksa or model}) item needs a key: the 0-based index of the correct option"
                )
            elif n_options != 2:
                out.append(
                    f"a {model} item without a key needs exactly 2 ordered options (score 0, score 1), got {n_options}"
                )
    return out


def validate_document(d: Any) -> list[Problem]:
    """Every problem of a bank document (the parsed JSON), in file order.

    Parameters
    ----------
    d : Any
        The parsed JSON. Anything is accepted; a non-object gives one problem.

    Returns
    -------
    list of Problem
        Empty when the bank is valid. Each problem names the item (``item_id``)
        when it concerns one item, and says what is wrong and what was found.
    """
    if not isinstance(d, dict):
        return [
            Problem(None, f'a bank must be a JSON object with an "items" list (got {_show(d)})')
        ]
    problems: list[Problem] = []
    unknown = sorted(set(d) - set(TOP_LEVEL_KEYS))
    if unknown:
        problems.append(
            Problem(
                None,
                f"unknown top-level fields: {', '.join(unknown)} (allowed: {', '.join(TOP_LEVEL_KEYS)})",
            )
        )
    problems += _version_problems(d)
    fw: _FrameworkCodes | None = None
    if "framework" in d:
        fw_problems, fw = _framework_problems(d["framework"])
        problems += fw_problems

    items = d.get("items")
    if not isinstance(items, list) or not items:
        problems.append(
            Problem(None, f"items must be a non-empty list of items (got {_show(items)})")
        )
        return problems
    seen: dict[str, int] = {}
    operational_areas: set[str] = set()
    all_areas: list[str] = []
    for index, item in enumerate(items):
        position = f"items[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(None, f"{position} must be an object (got {_show(item)})"))
            continue
        item_id = item.get("id")
        label: str | None = None
        if item_id is None:
            problems.append(Problem(None, f"{position} has no id"))
        elif not (isinstance(item_id, str) and item_id.strip() and item_id == item_id.strip()):
            problems.append(
                Problem(
                    None,
                    f"{position} id must be non-empty text without spaces around it (got {_show(item_id)})",
                )
            )
        else:
            label = item_id
            if item_id in seen:
                problems.append(Problem(item_id, f"duplicate id (also items[{seen[item_id]}])"))
            else:
                seen[item_id] = index
        for message in _item_problems(item, label or position, fw):
            problems.append(
                Problem(label, message) if label else Problem(None, f"{position}: {message}")
            )
        area = item.get("area")
        if isinstance(area, str):
            if area not in all_areas:
                all_areas.append(area)
            if item.get("status", "operational") == "operational":
                operational_areas.add(area)
    for area in all_areas:
        if area not in operational_areas:
            problems.append(
                Problem(
                    None, f"area {area} has no operational items (each area needs one to be scored)"
                )
            )
    return problems
