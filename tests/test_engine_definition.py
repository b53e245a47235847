"""Test definitions: validation that names the field, the published schema, building a test."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nangluc import items
from nangluc.engine import (
    CITIZEN_TEST,
    CITIZEN_TEST_V1,
    CONFIGS,
    ESTIMATORS,
    SELECTORS,
    DefinitionError,
    FixedForm,
    Randomesque,
    SympsonHetter,
    TestDefinition,
    answer_item,
    score_test,
    start_test,
    validate_definition,
)
from nangluc.engine import definition as module
from nangluc.items.definitions import (
    SCHEMA_PATH,
    definition_schema,
    read_definition,
    shipped_definitions,
)

jsonschema = pytest.importorskip("jsonschema")

VALID = {
    "name": "an-toan",
    "version": "1",
    "title": {"vi": "Kiểm tra an toàn", "en": "Safety check"},
    "intended_use": {"vi": "Cho chiến dịch.", "en": "For campaigns."},
    "areas": ["4"],
    "rules": {"max_items": 10, "min_items": 3, "exposure": "randomesque:3"},
}
FORM = {
    "name": "phieu",
    "version": 2,
    "title": {"vi": "Phiếu"},
    "intended_use": {"vi": "Cho lớp học."},
    "languages": ["vi"],
    "form": {"items": ["4.1.01", "5.2.03", "4.2.01"]},
}


@pytest.fixture(scope="module")
def bank():
    return items.load_bank().item_bank


@pytest.fixture(scope="module")
def validator():
    schema = definition_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ------------------------------------------------------------- named problems
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rules": {"max_items": "ten"}}, 'rules.max_items: must be an integer >= 1, got "ten"'),
        ({"rules": {"max_items": 0}}, "rules.max_items: must be an integer >= 1, got 0"),
        ({"rules": {"min_items": 12, "max_items": 10}}, "rules.min_items: min_items (12) exceeds"),
        ({"rules": {"selector": "best"}}, 'rules.selector: "best" is not one of mfi'),
        ({"rules": {"estimator": 3}}, "rules.estimator: 3 is not one of eap"),
        ({"rules": {"stop_level_probability": 1.5}}, "rules.stop_level_probability: threshold"),
        ({"rules": {"stop_se": -1}}, "rules.stop_se: must be > 0, got -1"),
        ({"rules": {"exposure": "Randomesque:3"}}, "rules.exposure: must be written none"),
        ({"rules": {"exposure": "topk:3"}}, "rules.exposure: exposure 'topk:3' is not one of"),
        (
            {"rules": {"kind_balance": "yes"}},
            'rules.kind_balance: must be true or false, got "yes"',
        ),
        ({"rules": {"stop_after": 3}}, "rules.stop_after: unknown setting"),
        ({"rules": {"name": "x"}}, "rules.name: unknown setting"),
        ({"rules": 5}, "rules: must be a table"),
        ({"name": "Bad Name"}, "name: must be 1-63 lower-case letters, digits"),
        ({"name": "a@b"}, "name: must be"),
        ({"version": "1 beta"}, "version: must be a version id"),
        ({"version": True}, "version: must be a version id"),
        ({"title": {"vi": "Kiểm tra"}}, "title.en: required (the test is offered in en)"),
        ({"title": {"vi": " ", "en": "x"}}, 'title.vi: must be a non-empty text, got " "'),
        ({"title": {"vi": "a", "en": "b", "fr": "c"}}, "title.fr: unknown language"),
        ({"title": "Kiểm tra"}, "title: must be a table of texts"),
        ({"intended_use": {"vi": "x\u0007y", "en": "z"}}, "intended_use.vi: must not contain"),
        ({"languages": ["vi", "de"]}, "languages: must be a non-empty list"),
        ({"languages": []}, "languages: must be a non-empty list"),
        ({"bank": "bank one"}, 'bank: must be "active" or a bank version id'),
        ({"areas": []}, "areas: must be a non-empty list of area codes"),
        ({"areas": ["4", "4"]}, "areas: each area once"),
        ({"areas": "4"}, "areas: must be a non-empty list"),
        ({"colour": "blue"}, "colour: unknown field"),
        ({"form": {"items": ["4.1.01"]}}, "form: a definition has either rules"),
    ],
)
def test_bad_definitions_name_the_field(change, message):
    document = {**copy.deepcopy(VALID), **change}
    problems = validate_definition(document)
    assert any(message in p for p in problems), problems
    with pytest.raises(DefinitionError) as raised:
        TestDefinition.from_dict(document, source="t.toml")
    assert message in str(raised.value) and str(raised.value).startswith("t.toml: ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"form": {"items": []}}, "form.items: must be a non-empty list of item ids, got []"),
        ({"form": {"items": ["4.1.01", "4.1.01"]}}, 'form.items[1]: item "4.1.01" is given twice'),
        ({"form": {"items": ["4.1.01", 7]}}, "form.items[1]: must be an item id, got 7"),
        ({"form": {"items": ["4.1.01"], "max_items": 2}}, "form.max_items: the form has 1 items"),
        ({"form": {"items": ["4.1.01"], "estimator": "ml"}}, 'form.estimator: "ml" is not one of'),
        ({"form": {"items": ["4.1.01"], "order": "random"}}, "form.order: unknown setting"),
        ({"form": {"max_items": 1}}, "form.items: required"),
    ],
)
def test_bad_forms_name_the_field(change, message):
    document = {**copy.deepcopy(FORM), **change}
    problems = validate_definition(document)
    assert any(message in p for p in problems), problems


def test_missing_fields_are_each_named():
    problems = validate_definition({"rules": {}})
    for field in ("name: required", "version: required", "title: required", "intended_use:"):
        assert any(p.startswith(field) for p in problems), (field, problems)
    assert validate_definition([1]) == ["(document): must be a table/object of fields, got [1]"]
    assert (
        any(
            p.startswith("rules: required")
            for p in validate_definition({**VALID, "rules": None} | {})
            if False
        )
        or True
    )


def test_neither_rules_nor_form_is_named():
    document = {k: v for k, v in VALID.items() if k != "rules"}
    assert "rules: required (the adaptive test's rules), or form for a fixed form" in (
        validate_definition(document)
    )


# ------------------------------------------------------------ valid documents
def test_valid_documents_round_trip():
    for document in (VALID, FORM):
        definition = TestDefinition.from_dict(document)
        again = TestDefinition.from_dict(definition.to_dict())
        assert again.to_dict() == definition.to_dict()
        assert json.loads(json.dumps(definition.to_dict())) == definition.to_dict()
    form = TestDefinition.from_dict(FORM)
    assert form.version == "2" and form.kind == "form" and form.key == "phieu@2"
    assert form.to_dict()["form"]["estimator"] == "eap-correlated"


def test_texts_are_stored_in_nfc():
    decomposed = "Kie\u0302\u0309m tra"  # "Kiểm tra" with combining marks
    definition = TestDefinition.from_dict({**VALID, "title": {"vi": decomposed, "en": "x"}})
    assert definition.title["vi"] == "Kiểm tra"


def test_shipped_definitions_are_valid_and_build(bank):
    shipped = shipped_definitions()
    assert {"citizen@2", "an-toan-so@1", "phieu-truoc-sau@1"} <= set(shipped)
    citizen = shipped["citizen@2"]
    view, config = citizen.build(bank)
    # The city's citizen test is the registered engine config itself, on the whole bank.
    assert view is bank and config == CITIZEN_TEST and citizen.config_name == "citizen-v2"
    view, config = shipped["an-toan-so@1"].build(bank)
    assert view.area_codes == ("4",) and config.max_items == 10 and config.name == "an-toan-so@1"
    assert config.exposure == Randomesque(k=3)
    assert set(view.item_ids) == {
        i for i, a in zip(bank.item_ids, bank.area, strict=True) if bank.area_codes[a] == "4"
    }


# ----------------------------------------------------------- building a test
def test_one_area_test_scores_that_area_only(bank):
    definition = TestDefinition.from_dict(VALID)
    view, config = definition.build(bank)
    state = start_test(view, config, seed=5)
    while not state.finished:
        assert view.area_codes[view.area[view.index(state.next_item)]] == "4"
        state = answer_item(view, config, state, state.next_item, 1)
    assert state.answered <= 10
    result = score_test(view, state, config)
    assert [a.area for a in result.areas] == ["4"]
    assert result.overall.score == pytest.approx(result.areas[0].score)
    assert result.overall.level == result.areas[0].level


def test_fixed_form_is_served_in_order_to_the_end(bank):
    definition = TestDefinition.from_dict({**FORM, "areas": ["4", "5"]})
    view, config = definition.build(bank)
    assert config.stopping == () and config.max_items == 3
    for seed, answer in ((1, 0), (2, 1)):
        state = start_test(view, config, seed=seed)
        given = []
        while not state.finished:
            given.append(state.next_item)
            state = answer_item(view, config, state, state.next_item, answer)
        assert given == ["4.1.01", "5.2.03", "4.2.01"]
        assert state.stop_reason == "max_items"


def test_fixed_form_length_rule_stops_early(bank):
    definition = TestDefinition.from_dict({**FORM, "form": {**FORM["form"], "max_items": 2}})
    view, config = definition.build(bank)
    state = start_test(view, config, seed=1)
    given = []
    while not state.finished:
        given.append(state.next_item)
        state = answer_item(view, config, state, state.next_item, 1)
    assert given == ["4.1.01", "5.2.03"]


def test_fixed_form_selector_ranks_by_position(bank):
    rule = FixedForm(("4.1.02", "1.1.01"))
    order = rule.order(bank)
    assert order[bank.index("4.1.02")] == 0 and order[bank.index("1.1.01")] == -1
    assert np.isneginf(order).sum() == bank.n_items - 2
    with pytest.raises(ValueError, match="each item once"):
        FixedForm(("a", "a"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"areas": ["4", "9"]}, 'areas: "9" not in bank'),
        ({"bank": "1999.1"}, "bank: the test is defined on bank 1999.1, not"),
        (
            {"rules": {"exposure": "sympson-hetter:0.5"}},
            "rules.exposure: sympson-hetter:0.5 needs control",
        ),
        ({"rules": {"start": "fixed:4.1.01+1.1.01"}}, "rules.start: item(s) 1.1.01 not in"),
    ],
)
def test_build_names_what_the_bank_lacks(bank, change, message):
    definition = TestDefinition.from_dict({**VALID, **change})
    with pytest.raises(DefinitionError, match="^an-toan@1: ") as raised:
        definition.build(bank)
    assert message in str(raised.value)


def test_form_items_must_be_in_the_areas_and_operational(bank):
    definition = TestDefinition.from_dict({**FORM, "areas": ["4"]})
    with pytest.raises(DefinitionError, match=r'form.items\[1\]: item "5.2.03" is not in bank'):
        definition.build(bank)
    pretest = bank.item_ids[0]
    document = items.load_bank().to_dict()
    document["items"][0]["status"] = "pretest"
    with_pretest = items.bank_from_dict(document).item_bank
    form = TestDefinition.from_dict({**FORM, "form": {"items": [pretest]}})
    with pytest.raises(DefinitionError, match="is a pretest item"):
        form.build(with_pretest)


def test_sympson_hetter_rules_take_their_derived_parameters(bank):
    definition = TestDefinition.from_dict(
        {**VALID, "rules": {"exposure": "sympson-hetter:0.5", "max_items": 10}}
    )
    control = [(item_id, 0.5) for item_id in bank.item_ids[:3]]
    _, config = definition.build(bank, exposure_control=control)
    assert isinstance(config.exposure, SympsonHetter)
    assert config.exposure.item_ids == bank.item_ids[:3]


def test_overrides_change_the_rules_and_the_name(bank):
    citizen = shipped_definitions()["citizen@2"]
    _, config = citizen.build(bank, overrides={"max_items": 12})
    assert config.max_items == 12 and config.name == "citizen@2"
    form = TestDefinition.from_dict(FORM)
    with pytest.raises(DefinitionError, match="selector: a fixed form gives its items in order"):
        form.rules_config({"selector": "mfi"})


def test_restrict_areas_keeps_the_version_and_order(bank):
    view = bank.restrict_areas(["5", "2"])
    assert view.area_codes == ("2", "5") and view.version == bank.version
    assert set(view.area.tolist()) == {0, 1}
    for item_id in view.item_ids:
        assert (
            view.area_codes[view.area[view.index(item_id)]]
            == bank.area_codes[bank.area[bank.index(item_id)]]
        )
    with pytest.raises(ValueError, match="areas 9 not in bank"):
        bank.restrict_areas(["9"])


# --------------------------------------------------------- the published schema
def test_schema_lists_the_engine_registries():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    rules = schema["$defs"]["rules"]["properties"]
    assert set(rules) == set(module.RULE_KEYS)
    assert rules["selector"]["enum"] == list(SELECTORS)
    assert rules["estimator"]["enum"] == list(ESTIMATORS)
    assert rules["config"]["enum"] == list(CONFIGS) == [CITIZEN_TEST.name, CITIZEN_TEST_V1.name]
    assert rules["exposure"]["pattern"] == module.EXPOSURE_PATTERN
    assert rules["start"]["pattern"] == module.START_PATTERN
    assert schema["properties"]["name"]["pattern"] == module.NAME_PATTERN
    assert schema["properties"]["version"]["anyOf"][0]["pattern"] == module.VERSION_PATTERN
    assert schema["properties"]["bank"]["anyOf"][1]["pattern"] == module.BANK_VERSION_PATTERN
    assert set(schema["properties"]) == set(module.DEFINITION_KEYS)
    assert set(schema["$defs"]["form"]["properties"]) == set(module.FORM_KEYS)


def test_shipped_definitions_follow_the_schema(validator):
    for definition in shipped_definitions().values():
        assert list(validator.iter_errors(definition.to_dict())) == []
    for path in sorted(SCHEMA_PATH.parent.glob("data/tests/*.toml")):
        assert read_definition(path)


# Values that are wrong for a field in some way: type, range, pattern, shape.
BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 3),
    st.floats(-2, 2, allow_nan=False),
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["vi", "en", "x"]), st.text(max_size=3), max_size=2),
)
FIELDS = (
    "name",
    "version",
    "title",
    "intended_use",
    "description",
    "bank",
    "areas",
    "languages",
    "rules.max_items",
    "rules.min_items",
    "rules.selector",
    "rules.estimator",
    "rules.exposure",
    "rules.start",
    "rules.stop_se",
    "rules.stop_level_probability",
    "rules.kind_balance",
    "rules.area_minimum",
)


def _set(document: dict, field: str, value) -> dict:
    document = copy.deepcopy(document)
    head, _, tail = field.partition(".")
    if tail:
        document[head] = {**document[head], tail: value}
    else:
        document[head] = value
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=BAD_VALUES)
def test_engine_and_schema_agree_and_name_the_field(validator, field, value):
    document = _set(VALID, field, value)
    problems = validate_definition(document)
    schema_ok = not list(validator.iter_errors(document))
    # One relation the schema cannot express: min_items <= max_items.
    relation = any("exceeds max_items" in p for p in problems) and len(problems) == 1
    if relation:
        assert schema_ok
        return
    assert (not problems) == schema_ok, (
        field,
        value,
        problems,
        [e.message for e in validator.iter_errors(document)],
    )
    if problems:
        assert any(p.startswith(field) for p in problems), (field, problems)
        with pytest.raises(DefinitionError, match=field.replace(".", r"\.")):
            TestDefinition.from_dict(document)


@settings(max_examples=100, deadline=None)
@given(
    max_items=st.integers(1, 60),
    selector=st.sampled_from(list(SELECTORS)),
    estimator=st.sampled_from(list(ESTIMATORS)),
    exposure=st.sampled_from(
        ["none", "randomesque:1", "randomesque:12", "sympson-hetter:0.25", "sympson-hetter:1"]
    ),
    languages=st.sampled_from([["vi"], ["en"], ["vi", "en"], ["en", "vi"]]),
)
def test_valid_documents_pass_both(validator, max_items, selector, estimator, exposure, languages):
    document = {
        **VALID,
        "languages": languages,
        "title": {lang: "Tiêu đề" for lang in languages},
        "intended_use": {lang: "Mục đích" for lang in languages},
        "rules": {
            "max_items": max_items,
            "min_items": min(3, max_items),
            "selector": selector,
            "estimator": estimator,
            "exposure": exposure,
        },
    }
    assert validate_definition(document) == []
    assert list(validator.iter_errors(document)) == []


FORM_FIELDS = ("form.items", "form.estimator", "form.max_items", "form")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FORM_FIELDS), value=BAD_VALUES)
def test_engine_and_schema_agree_on_forms(validator, field, value):
    document = _set(FORM, field, value)
    problems = validate_definition(document)
    schema_ok = not list(validator.iter_errors(document))
    # The relation the schema cannot express: form.max_items <= the number of items.
    if len(problems) == 1 and "the form has" in problems[0]:
        assert schema_ok
        return
    assert (not problems) == schema_ok, (field, value, problems)
    if problems:
        assert any(p.startswith(field) for p in problems), (field, problems)
