"""Test definitions: a test's rules (or a fixed form) as data, validated with named fields.

A *test definition* is a small document (a TOML or JSON file; the published
JSON Schema is ``nangluc/items/test-definition.schema.json``)::

    name = "an-toan-so"                 # lower-case letters, digits, . _ -
    version = "1"                       # a published version never changes
    bank = "active"                     # or a bank version id such as "2024.10-p3"
    areas = ["4"]                       # the areas in scope (default: all of the bank's)
    languages = ["vi", "en"]

    [title]
    vi = "Kiểm tra nhanh: an toàn trên mạng"
    en = "Quick check: staying safe online"

    [intended_use]
    vi = "..."
    en = "..."

    [rules]                             # the same keys as `nangluc simulate`'s flags
    max_items = 10
    stop_level_probability = 0.9

or, for a fixed form (paper forms, door-to-door surveys, before/after
training), ``[form]`` with ``items = ["4.1.01", ...]`` in the order they are
given (and optionally ``estimator`` and ``max_items``) instead of ``[rules]``.

Everything here is pure: :func:`validate_definition` lists every problem of a
document as ``field: what is wrong``; :meth:`TestDefinition.build` turns a
definition and a bank into the bank the test runs on (only the areas in
scope, so the overall result of a one-area test is that area's) and its
:class:`~nangluc.engine.config.TestConfig`. :func:`build_rules` is the one
builder of rules from the ``simulate`` vocabulary (:data:`RULE_KEYS`); the
simulator's designs and grids use it too.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nangluc.engine.bank import ItemBank
from nangluc.engine.config import CITIZEN_TEST, CONFIGS, TestConfig
from nangluc.engine.estimation import ESTIMATORS
from nangluc.engine.selection import (
    SELECTORS,
    AreaMinimum,
    FixedForm,
    FixedStart,
    KindBalance,
    Randomesque,
    RandomStart,
    SympsonHetter,
)
from nangluc.engine.stopping import (
    LevelDecided,
    LevelProbability,
    OverallStandardError,
    ThetaStandardError,
)

#: The rule keys of a definition's ``[rules]`` table, of design grids and of
#: ``nangluc simulate``'s flags (dashes for underscores), with what each means.
RULE_KEYS: dict[str, str] = {
    "config": "start from this named engine config (default: citizen-v2, the citizen test)",
    "selector": "item selection: mfi (maximum information at the estimate), pwi (posterior-weighted "
    "information), overall (largest gain in precision of the overall score), kl (Kullback-Leibler "
    "around the estimate), kl-posterior (posterior-weighted KL), mepv (minimum expected posterior "
    "variance), random, a-stratified (low-a items first)",
    "estimator": "ability estimate: eap, map, mle (bounded at +-4), wle (Warm's weighted likelihood) "
    "per area, or eap-correlated (areas borrow strength from each other)",
    "stop_se": "stop when every area's theta has SE <= X",
    "stop_overall_se": "stop when the overall score (0-100) has SE <= X points",
    "stop_level": "stop when the overall level is decided with confidence C (e.g. 0.95): the whole "
    "two-sided interval lies in one band",
    "stop_level_probability": "stop when the estimated overall level is right with probability >= P "
    "(e.g. 0.9)",
    "min_items": "never stop before N scored items",
    "max_items": "always stop at N scored items",
    "exposure": "none, randomesque:K (random among the K best items) or sympson-hetter:RATE "
    "(items given to at most about RATE of the test takers; control parameters derived by simulation)",
    "start": "how the first items are chosen: selector (as any other item), random-best:K (the "
    "first item at random among the K best at the prior) or fixed:ID[+ID...] (these items first)",
    "area_minimum": "every area gets at least N items first (0 = no such rule)",
    "kind_balance": "balance knowledge / skill / attitude items (true/false)",
}
#: Keys that replace the base config's stopping rules when any is given.
STOP_KEYS = ("stop_level", "stop_level_probability", "stop_overall_se", "stop_se")
#: Keys of a fixed form's ``[form]`` table.
FORM_KEYS: dict[str, str] = {
    "items": "item ids in the order they are given (each once)",
    "estimator": "how the answers are scored: eap, map, mle, wle or eap-correlated (default)",
    "max_items": "stop after this many scored items (default: the whole form)",
}
#: Top-level keys of a definition document.
DEFINITION_KEYS: tuple[str, ...] = (
    "$schema",
    "name",
    "version",
    "title",
    "description",
    "intended_use",
    "bank",
    "areas",
    "languages",
    "rules",
    "form",
)
LANGUAGES: tuple[str, ...] = ("vi", "en")
#: A test's name: it appears in URLs (``/?test=NAME``) and in engine config names (``NAME@VERSION``).
#: (The patterns are those of the published JSON Schema; ``(?!\n)`` keeps Python's
#: ``$`` from accepting a trailing newline, and means nothing to other engines.)
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}(?!\n)$"
#: A definition's version: up to 32 letters, digits and ``._+-``.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,31}(?!\n)$"
#: Bank version ids (as :mod:`nangluc.items.schema` writes them).
BANK_VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}(?!\n)$"
#: How a definition writes ``rules.exposure`` and ``rules.start`` (the command line
#: is more lenient about case and spaces).
EXPOSURE_PATTERN = (
    r"^(none|randomesque:[1-9][0-9]{0,2}|sympson-hetter:(0?\.[0-9]*[1-9][0-9]*|1|1\.0+))(?!\n)$"
)
START_PATTERN = r"^(selector|random-best:[1-9][0-9]{0,2}|fixed:[^+\s]+(\+[^+\s]+)*)(?!\n)$"
#: ``bank`` value meaning "the bank version the service has active" (the shipped bank offline).
ACTIVE_BANK = "active"
#: Estimator of a fixed form unless it names one: the citizen test's.
DEFAULT_FORM_ESTIMATOR = "eap-correlated"
_TEXT_MAX = 2000
_TITLE_MAX = 200


class DefinitionError(ValueError):
    """A test definition that cannot be used; ``problems`` name each field (``rules.max_items: ...``)."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(self.problems))


def shown(value: Any) -> str:
    """A value as the document wrote it (JSON), for messages: ``"ten"``, ``2.5``, ``true``."""
    import json  # only for messages: ``import nangluc.engine`` stays light

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------ rule values
def parse_exposure(text: str) -> tuple[str, float | None]:
    """Parse ``none``, ``randomesque:K`` or ``sympson-hetter:RATE``.

    Returns the kind and its number (None for ``none``).
    """
    text = str(text).strip().lower()
    if text == "none":
        return "none", None
    kind, _, value = text.partition(":")
    if kind == "randomesque":
        try:
            k = int(value)
        except ValueError:
            raise ValueError(
                f"exposure {text!r}: randomesque needs an integer K, e.g. randomesque:3"
            ) from None
        if k < 1:
            raise ValueError(f"exposure {text!r}: K must be >= 1")
        return "randomesque", float(k)
    if kind in ("sympson-hetter", "sh"):
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(
                f"exposure {text!r}: sympson-hetter needs a rate, e.g. sympson-hetter:0.25"
            ) from None
        if not 0 < rate <= 1:
            raise ValueError(f"exposure {text!r}: the rate must lie in (0, 1]")
        return "sympson-hetter", rate
    raise ValueError(f"exposure {text!r} is not one of none, randomesque:K, sympson-hetter:RATE")


def parse_start(text: str):
    """Parse ``selector``, ``random-best:K`` or ``fixed:ID[+ID...]`` into a start rule (or None)."""
    text = str(text).strip()
    kind, _, value = text.partition(":")
    kind = kind.lower()
    if kind == "selector" and not value:
        return None
    if kind == "random-best":
        try:
            k = int(value)
        except ValueError:
            raise ValueError(
                f"start {text!r}: random-best needs an integer K, e.g. random-best:5"
            ) from None
        return RandomStart(k=k)
    if kind == "fixed" and value:
        return FixedStart(tuple(v for v in value.split("+") if v))
    raise ValueError(f"start {text!r} is not one of selector, random-best:K, fixed:ID[+ID...]")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"must be a number, got {shown(value)}")
    return float(value)


def _integer(value: Any, minimum: int) -> int:
    # 10.0 is 10 (JSON does not tell them apart); 2.5 and "ten" are not integers.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"must be an integer >= {minimum}, got {shown(value)}")
    return value


def _name_of(value: Any, registry: Mapping[str, Any], what: str) -> str:
    if not isinstance(value, str) or value not in registry:
        raise ValueError(f"{shown(value)} is not one of {', '.join(registry)}")
    return value


@dataclass(frozen=True)
class Rules:
    """Rules built from the ``simulate`` vocabulary by :func:`build_rules`.

    ``sympson_hetter_rate`` is set when the rules ask for Sympson–Hetter
    exposure control at a rate: its control parameters still have to be
    derived by simulation (:func:`nangluc.simulations.exposure.sympson_hetter_control`),
    and until then ``config.exposure`` is a Sympson–Hetter rule that gives
    every item (control 1).
    """

    config: TestConfig
    sympson_hetter_rate: float | None = None
    overrides: tuple[tuple[str, Any], ...] = ()


def build_rules(
    spec: Mapping[str, Any],
    *,
    name: str | None = None,
    base: TestConfig | None = None,
    prefix: str = "",
) -> Rules:
    """A :class:`TestConfig` from a base config and the rule keys in ``spec``.

    Keys are those of :data:`RULE_KEYS`; None values are ignored (a flag that
    was not given). If any stop key is given, the stopping rules are exactly
    those given (the test stops when any is met); otherwise the base
    config's rules stay. ``config`` picks the base by name (default ``base``,
    else the citizen test).

    Raises
    ------
    DefinitionError
        Every unknown key and bad value, each as ``PREFIXkey: problem``.
    """
    spec = {k: v for k, v in dict(spec).items() if v is not None}
    problems: list[str] = []

    def bad(key: str, message: str) -> None:
        problems.append(f"{prefix}{key}: {message}")

    for key in sorted(set(spec) - set(RULE_KEYS) - {"name"}):
        bad(key, f"unknown setting (known: {', '.join(RULE_KEYS)})")
    config = base if base is not None else CITIZEN_TEST
    if "config" in spec:
        try:
            config = CONFIGS[_name_of(spec["config"], CONFIGS, "config")]
        except ValueError as error:
            bad("config", f"unknown config: {error}")
    changes: dict[str, Any] = {}
    for key, registry in (("selector", SELECTORS), ("estimator", ESTIMATORS)):
        if key in spec:
            try:
                changes[key] = registry[_name_of(spec[key], registry, key)]()
            except ValueError as error:
                bad(key, str(error))
    stopping = []
    for key, rule, field in (
        ("stop_level", LevelDecided, "confidence"),
        ("stop_level_probability", LevelProbability, "threshold"),
        ("stop_overall_se", OverallStandardError, "target"),
        ("stop_se", ThetaStandardError, "target"),
    ):
        if key in spec:
            try:
                value = _number(spec[key])
                if field == "target" and value <= 0:
                    raise ValueError(f"must be > 0, got {shown(spec[key])}")
                stopping.append(rule(**{field: value}))
            except ValueError as error:
                bad(key, str(error))
    if stopping:
        changes["stopping"] = tuple(stopping)
    for key, minimum in (("min_items", 0), ("max_items", 1)):
        if key in spec:
            try:
                changes[key] = _integer(spec[key], minimum)
            except ValueError as error:
                bad(key, str(error))
    low = changes.get("min_items", config.min_items)
    high = changes.get("max_items", config.max_items)
    length_ok = not any(
        p.startswith((f"{prefix}min_items:", f"{prefix}max_items:")) for p in problems
    )
    if low > high and length_ok:
        where = "min_items" if "min_items" in spec else "max_items"
        bad(
            where,
            f"min_items ({low}) exceeds max_items ({high})"
            + ("" if {"min_items", "max_items"} <= set(spec) else f" of config {config.name!r}"),
        )
    content = list(config.content)
    if "area_minimum" in spec:
        try:
            minimum = _integer(spec["area_minimum"], 0)
            content = [r for r in content if not isinstance(r, AreaMinimum)]
            if minimum > 0:
                content.insert(0, AreaMinimum(items_per_area=minimum))
        except ValueError as error:
            bad("area_minimum", str(error))
    if "kind_balance" in spec:
        if not isinstance(spec["kind_balance"], bool):
            bad("kind_balance", f"must be true or false, got {shown(spec['kind_balance'])}")
        else:
            content = [r for r in content if not isinstance(r, KindBalance)]
            if spec["kind_balance"]:
                content.append(KindBalance())
    if tuple(content) != config.content:
        changes["content"] = tuple(content)
    if "start" in spec:
        try:
            if not isinstance(spec["start"], str):
                raise ValueError(
                    f"must be a text such as random-best:5, got {shown(spec['start'])}"
                )
            changes["start"] = parse_start(spec["start"])
        except ValueError as error:
            bad("start", str(error))
    rate = None
    if "exposure" in spec:
        try:
            if not isinstance(spec["exposure"], str):
                raise ValueError(
                    f"must be a text such as randomesque:3, got {shown(spec['exposure'])}"
                )
            kind, value = parse_exposure(spec["exposure"])
            if kind == "none":
                changes["exposure"] = None
            elif kind == "randomesque":
                changes["exposure"] = Randomesque(k=int(value))
            else:
                rate = value
                changes["exposure"] = SympsonHetter()
        except ValueError as error:
            bad("exposure", str(error))
    if problems:
        raise DefinitionError(problems)
    overrides = tuple((k, spec[k]) for k in RULE_KEYS if k in spec and k != "config")
    if name is None:
        name = spec.get("name") or (
            config.name + "".join(f" {k}={v}" for k, v in overrides) if overrides else config.name
        )
    changes["name"] = str(name)
    try:
        config = dataclasses.replace(config, **changes)
    except (TypeError, ValueError) as error:
        raise DefinitionError([f"{prefix.rstrip('.') or 'rules'}: {error}"]) from None
    return Rules(config=config, sympson_hetter_rate=rate, overrides=overrides)


# ----------------------------------------------------------------- definitions
@dataclass(frozen=True)
class FormSpec:
    """A fixed form: item ids in order, how it is scored, and its length limit."""

    items: tuple[str, ...]
    estimator: str = DEFAULT_FORM_ESTIMATOR
    max_items: int | None = None

    @property
    def length(self) -> int:
        return self.max_items if self.max_items is not None else len(self.items)


@dataclass(frozen=True, eq=False)
class TestDefinition:
    """A validated test definition (see the module docstring for the document).

    Build one with :meth:`from_dict` (it raises :class:`DefinitionError`
    naming every bad field). ``rules`` (adaptive) and ``form`` (fixed) are
    mutually exclusive.
    """

    __test__ = False  # not a pytest test class

    name: str
    version: str
    title: dict[str, str]
    intended_use: dict[str, str]
    description: dict[str, str] | None = None
    bank: str = ACTIVE_BANK
    areas: tuple[str, ...] | None = None
    languages: tuple[str, ...] = LANGUAGES
    rules: dict[str, Any] | None = None
    form: FormSpec | None = None

    # ------------------------------------------------------------------ read
    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> TestDefinition:
        """Validate ``data`` (a parsed TOML/JSON document) into a definition.

        Raises
        ------
        DefinitionError
            With every problem, each naming its field.
        """
        problems = validate_definition(data)
        if problems:
            raise DefinitionError(problems, source)
        return cls._from_valid(data)

    @classmethod
    def _from_valid(cls, data: Mapping[str, Any]) -> TestDefinition:
        form = None
        if "form" in data:
            spec = data["form"]
            form = FormSpec(
                items=tuple(spec["items"]),
                estimator=spec.get("estimator", DEFAULT_FORM_ESTIMATOR),
                max_items=spec.get("max_items"),
            )
        version = _version_text(data["version"])
        return cls(
            name=data["name"],
            version=str(version),
            title=_texts(data["title"]),
            intended_use=_texts(data["intended_use"]),
            description=_texts(data["description"]) if "description" in data else None,
            bank=data.get("bank", ACTIVE_BANK),
            areas=tuple(data["areas"]) if "areas" in data else None,
            languages=tuple(data.get("languages", LANGUAGES)),
            rules=dict(data["rules"]) if "rules" in data else None,
            form=form,
        )

    def to_dict(self) -> dict[str, Any]:
        """The definition as a plain document (what is stored and served; round-trips)."""
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "title": dict(self.title),
        }
        if self.description is not None:
            out["description"] = dict(self.description)
        out["intended_use"] = dict(self.intended_use)
        out["bank"] = self.bank
        if self.areas is not None:
            out["areas"] = list(self.areas)
        out["languages"] = list(self.languages)
        if self.rules is not None:
            out["rules"] = dict(self.rules)
        if self.form is not None:
            form: dict[str, Any] = {
                "items": list(self.form.items),
                "estimator": self.form.estimator,
            }
            if self.form.max_items is not None:
                form["max_items"] = self.form.max_items
            out["form"] = form
        return out

    # ----------------------------------------------------------------- names
    @property
    def key(self) -> str:
        """``NAME@VERSION``: the definition's unique id."""
        return f"{self.name}@{self.version}"

    @property
    def kind(self) -> str:
        """``"adaptive"`` or ``"form"``."""
        return "form" if self.form is not None else "adaptive"

    @property
    def config_name(self) -> str:
        """The name of the engine config sessions of this test record.

        A definition that is exactly a registered config on the whole bank
        (``[rules] config = "citizen-v2"`` and nothing else) runs as that
        config, under its name, so its sessions are the same test as before
        definitions existed; every other definition is ``NAME@VERSION``.
        """
        if (
            self.form is None
            and self.areas is None
            and self.rules is not None
            and set(self.rules) == {"config"}
        ):
            return str(self.rules["config"])
        return self.key

    def text(self, field: str, language: str) -> str | None:
        """``title``, ``description`` or ``intended_use`` in ``language`` (else Vietnamese)."""
        value = getattr(self, field)
        if value is None:
            return None
        return value.get(language) or value.get("vi") or next(iter(value.values()))

    # ---------------------------------------------------------------- build
    def rules_config(self, overrides: Mapping[str, Any] | None = None) -> Rules:
        """The test's rules without a bank (a fixed form's too), with ``overrides`` applied.

        ``overrides`` are rule keys (for a form: ``estimator``, ``max_items``)
        that replace the definition's, as ``nangluc simulate``'s flags do.
        """
        overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
        if self.form is not None:
            return self._form_rules(overrides)
        spec = {**(self.rules or {}), **overrides}
        # Changed rules are not the registered config any more: they take the test's key.
        name = self.config_name if not overrides else self.key
        return build_rules(spec, name=name, prefix="rules.")

    def _form_rules(self, overrides: Mapping[str, Any]) -> Rules:
        if self.form is None:
            raise TypeError("not a fixed form")
        extra = sorted(set(overrides) - {"estimator", "max_items"})
        if extra:
            raise DefinitionError(
                [
                    f"{k}: a fixed form gives its items in order; only estimator and max_items "
                    "can be changed"
                    for k in extra
                ]  # fmt: skip
            )
        spec = {
            "estimator": overrides.get("estimator", self.form.estimator),
            "max_items": overrides.get("max_items", self.form.length),
        }
        problems = _form_problems({"items": list(self.form.items), **spec}, "form.")
        if problems:
            raise DefinitionError(problems)
        config = TestConfig(
            name=self.key,
            estimator=ESTIMATORS[spec["estimator"]](),
            selector=FixedForm(self.form.items),
            content=(FixedForm(self.form.items),),
            exposure=None,
            start=None,
            stopping=(),
            min_items=0,
            max_items=int(spec["max_items"]),
            # Every item of the form is given, however little it tells.
            min_information=0.0,
        )
        return Rules(config=config, overrides=tuple(overrides.items()))

    def view(self, bank: ItemBank, *, check_bank: bool = False) -> ItemBank:
        """``bank`` restricted to the definition's areas (the same object when all are in scope).

        Raises
        ------
        DefinitionError
            An area the bank lacks; with ``check_bank``, a bank version other
            than the one the definition names.
        """
        if check_bank and self.bank != ACTIVE_BANK and bank.version != self.bank:
            raise DefinitionError(
                [f"bank: the test is defined on bank {self.bank}, not {bank.version}"], self.key
            )
        if self.areas is None:
            return bank
        missing = [a for a in self.areas if a not in bank.area_codes]
        if missing:
            raise DefinitionError(
                [
                    f"areas: {', '.join(map(shown, missing))} not in bank {bank.version} "
                    f"(its areas: {', '.join(bank.area_codes)})"
                ],
                self.key,
            )
        if tuple(sorted(self.areas, key=bank.area_codes.index)) == bank.area_codes:
            return bank
        return bank.restrict_areas(self.areas)

    def build(
        self,
        bank: ItemBank,
        *,
        exposure_control: Sequence[tuple[str, float]] | None = None,
        overrides: Mapping[str, Any] | None = None,
        check_bank: bool = True,
    ) -> tuple[ItemBank, TestConfig]:
        """The bank the test runs on and its config.

        Parameters
        ----------
        bank : ItemBank
            The bank version the test uses (the definition's ``bank``, or
            the active one when it says ``active``).
        exposure_control : sequence of (item id, control parameter), optional
            Sympson–Hetter parameters derived by simulation, needed when the
            rules say ``exposure = "sympson-hetter:RATE"``.
        overrides : mapping, optional
            Rule keys that replace the definition's (see :meth:`rules_config`).
        check_bank : bool
            Refuse a bank whose version is not the one the definition names
            (off when a caller deliberately runs it on another bank).

        Returns
        -------
        (ItemBank, TestConfig)
            The bank restricted to the areas in scope (the same object when
            every area is in scope), and the rules.

        Raises
        ------
        DefinitionError
            Another bank version, an area or form item the bank lacks, a
            pretest item in a form, or Sympson–Hetter without its parameters.
        """
        view = self.view(bank, check_bank=check_bank)
        try:
            rules = self.rules_config(overrides)
        except DefinitionError as error:
            raise DefinitionError(error.problems, self.key) from None
        config = rules.config
        if self.form is not None:
            problems = []
            for position, item_id in enumerate(self.form.items):
                index = view._index.get(item_id)
                where = f"form.items[{position}]"
                if index is None:
                    scope = f" (areas {', '.join(view.area_codes)})" if view is not bank else ""
                    problems.append(
                        f"{where}: item {shown(item_id)} is not in bank {bank.version}{scope}"
                    )
                elif not view.operational[index]:
                    problems.append(
                        f"{where}: item {shown(item_id)} is a pretest item (it would not be scored)"
                    )
            if problems:
                raise DefinitionError(problems, self.key)
        elif rules.sympson_hetter_rate is not None:
            if not exposure_control:
                raise DefinitionError(
                    [
                        f"rules.exposure: sympson-hetter:{rules.sympson_hetter_rate:g} needs control "
                        "parameters derived by simulation first (activation derives them; "
                        "`nangluc simulate --test` does too)"
                    ],
                    self.key,
                )
            ids, control = zip(*exposure_control, strict=True)
            config = dataclasses.replace(
                config, exposure=SympsonHetter(control=tuple(control), item_ids=tuple(ids))
            )
        if isinstance(config.start, FixedStart):
            unknown = [i for i in config.start.items if i not in view._index]
            if unknown:
                raise DefinitionError(
                    [f"rules.start: item(s) {', '.join(unknown)} not in the test's bank"], self.key
                )
        return view, config

    def length(self) -> tuple[int, int]:
        """(minimum, maximum) number of scored items."""
        config = self.rules_config().config
        return config.min_items, config.max_items


def _version_text(version: Any) -> Any:
    """A whole-number version written as a number (``version = 2``) is the text ``"2"``."""
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        return str(version)
    return version


def _texts(value: Mapping[str, str]) -> dict[str, str]:
    import unicodedata

    return {k: unicodedata.normalize("NFC", v.strip()) for k, v in value.items()}


# ------------------------------------------------------------------ validation
def validate_definition(data: Any) -> list[str]:
    """Every problem of a definition document, each as ``field: what is wrong`` (empty: valid).

    Checks what can be checked without a bank: types, names, patterns,
    languages, the rule values (through :func:`build_rules`) and the form.
    Whether the areas, the form's items and the bank exist is checked by
    :meth:`TestDefinition.build` against a bank.
    """
    if not isinstance(data, Mapping):
        return [f"(document): must be a table/object of fields, got {shown(data)}"]
    problems: list[str] = []
    for key in data:
        if key not in DEFINITION_KEYS:
            problems.append(f"{key}: unknown field (known: {', '.join(DEFINITION_KEYS[1:])})")
    name = data.get("name")
    if "name" not in data:
        problems.append("name: required (lower-case letters, digits, '.', '_' or '-')")
    elif not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        problems.append(
            "name: must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit, got {shown(name)}"
        )
    if "version" not in data:
        problems.append('version: required (e.g. "1")')
    else:
        version = _version_text(data["version"])
        if not isinstance(version, str) or not re.match(VERSION_PATTERN, version):
            problems.append(
                "version: must be a version id (letters, digits, '.', '_', '+', '-'; up to 32), "
                f"got {shown(data['version'])}"
            )
    languages = LANGUAGES
    if "languages" in data:
        value = data["languages"]
        if (
            not isinstance(value, list)
            or not value
            or any(v not in LANGUAGES for v in value)
            or len(set(value)) != len(value)
        ):
            problems.append(
                f"languages: must be a non-empty list of distinct codes from {', '.join(LANGUAGES)}, "
                f"got {shown(value)}"
            )
        else:
            languages = tuple(value)
    for field, required, limit in (
        ("title", True, _TITLE_MAX),
        ("intended_use", True, _TEXT_MAX),
        ("description", False, _TEXT_MAX),
    ):
        if field not in data:
            if required:
                problems.append(f"{field}: required, a text per language ({', '.join(languages)})")
            continue
        problems += _text_problems(field, data[field], languages, limit)
    if "bank" in data:
        bank = data["bank"]
        if not isinstance(bank, str) or not (
            bank == ACTIVE_BANK or re.match(BANK_VERSION_PATTERN, bank)
        ):
            problems.append(
                f'bank: must be "active" or a bank version id such as "2024.10-p3", got {shown(bank)}'
            )
    if "areas" in data:
        areas = data["areas"]
        if (
            not isinstance(areas, list)
            or not areas
            or any(not isinstance(a, str) or not a.strip() for a in areas)
        ):
            problems.append(f"areas: must be a non-empty list of area codes, got {shown(areas)}")
        elif len(set(areas)) != len(areas):
            problems.append(f"areas: each area once, got {shown(areas)}")
    has_rules, has_form = "rules" in data, "form" in data
    if has_rules and has_form:
        problems.append(
            "form: a definition has either rules (an adaptive test) or form (a fixed form), not both"
        )
    elif not has_rules and not has_form:
        problems.append("rules: required (the adaptive test's rules), or form for a fixed form")
    elif has_rules:
        rules = data["rules"]
        if not isinstance(rules, Mapping):
            problems.append(f"rules: must be a table of rule settings, got {shown(rules)}")
        elif "name" in rules:
            problems.append("rules.name: unknown setting (the test's name is the top-level name)")
        else:
            # null means "not given" to the command line; a document says what it means.
            problems += [
                f"rules.{key}: must be given a value (leave the key out for the default), got null"
                for key, value in rules.items()
                if value is None
            ]
            try:
                build_rules(rules, name="check", prefix="rules.")
            except DefinitionError as error:
                problems += list(error.problems)
            for key, pattern, form in (
                ("exposure", EXPOSURE_PATTERN, "none, randomesque:K or sympson-hetter:RATE"),
                ("start", START_PATTERN, "selector, random-best:K or fixed:ID[+ID...]"),
            ):
                value = rules.get(key)
                named = any(p.startswith(f"rules.{key}:") for p in problems)
                if isinstance(value, str) and not re.match(pattern, value) and not named:
                    problems.append(
                        f"rules.{key}: must be written {form} (lower case, no spaces; K from 1 "
                        f"to 999, RATE in (0, 1]), got {shown(value)}"
                    )
    else:
        problems += _form_problems(data["form"], "form.")
    return problems


def _text_problems(field: str, value: Any, languages: Sequence[str], limit: int) -> list[str]:
    import unicodedata

    if not isinstance(value, Mapping):
        return [
            f"{field}: must be a table of texts by language ({', '.join(languages)}), got {shown(value)}"
        ]
    problems = []
    for key, text in value.items():
        if key not in LANGUAGES:
            problems.append(f"{field}.{key}: unknown language (known: {', '.join(LANGUAGES)})")
        elif not isinstance(text, str) or not text.strip():
            problems.append(f"{field}.{key}: must be a non-empty text, got {shown(text)}")
        elif len(text) > limit:
            problems.append(f"{field}.{key}: at most {limit} characters, got {len(text)}")
        elif any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
            problems.append(f"{field}.{key}: must not contain control characters")
    for language in languages:
        if language not in value:
            problems.append(f"{field}.{language}: required (the test is offered in {language})")
    return problems


def _form_problems(form: Any, prefix: str) -> list[str]:
    if not isinstance(form, Mapping):
        return [f"{prefix.rstrip('.')}: must be a table with items, got {shown(form)}"]
    problems = [
        f"{prefix}{key}: unknown setting (known: {', '.join(FORM_KEYS)})"
        for key in form
        if key not in FORM_KEYS
    ]
    items = form.get("items")
    if "items" not in form:
        problems.append(f"{prefix}items: required, the item ids in the order they are given")
    elif not isinstance(items, list) or not items:
        problems.append(f"{prefix}items: must be a non-empty list of item ids, got {shown(items)}")
    else:
        seen: set[str] = set()
        for position, item in enumerate(items):
            if not isinstance(item, str) or not item.strip() or len(item) > 100:
                problems.append(f"{prefix}items[{position}]: must be an item id, got {shown(item)}")
            elif item in seen:
                problems.append(f"{prefix}items[{position}]: item {shown(item)} is given twice")
            else:
                seen.add(item)
    if "estimator" in form:
        try:
            _name_of(form["estimator"], ESTIMATORS, "estimator")
        except ValueError as error:
            problems.append(f"{prefix}estimator: {error}")
    if "max_items" in form:
        try:
            top = _integer(form["max_items"], 1)
            if isinstance(items, list) and items and top > len(items):
                problems.append(
                    f"{prefix}max_items: the form has {len(items)} items, got {shown(top)}"
                )
        except ValueError as error:
            problems.append(f"{prefix}max_items: {error}")
    return problems


def restricted_length(config: TestConfig, bank: ItemBank) -> int:
    """The most scored items a test can give on ``bank`` (its max, or the operational items)."""
    return int(min(config.max_items, int(np.count_nonzero(bank.operational))))


__all__ = [
    "ACTIVE_BANK",
    "DEFINITION_KEYS",
    "FORM_KEYS",
    "RULE_KEYS",
    "DefinitionError",
    "FormSpec",
    "Rules",
    "TestDefinition",
    "build_rules",
    "parse_exposure",
    "parse_start",
    "validate_definition",
]
