"""The bank format: a corrupted bank is refused with every problem named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nangluc import items
from nangluc.items.bank import read_json
from nangluc.items.build import SCHEMA_PATH
from nangluc.items.schema import BANK_SCHEMA, Problem, validate_document

jsonschema_rs = pytest.importorskip("jsonschema_rs")


def bare_bank() -> dict:
    """The smallest useful banks: one item of each model, two areas, nothing else."""
    return {
        "items": [
            {"id": "a", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0},
            {"id": "b", "area": "1", "model": "3pl", "a": 1.4, "b": 0.5, "c": 0.25},
            {"id": "c", "area": "2", "model": "grm", "a": 1.8, "thresholds": [-1.0, 0.1, 1.2]},
        ]
    }


@pytest.fixture(scope="module")
def shipped() -> dict:
    return read_json(items.DEFAULT_BANK_PATH)


def messages(problems: list[Problem], item_id: str | None = None) -> list[str]:
    return [p.message for p in problems if item_id is None or p.item_id == item_id]


def test_bare_bank_is_valid_and_loads():
    doc = items.bank_from_dict(bare_bank())
    assert validate_document(bare_bank()) == []
    assert doc.framework is None
    assert doc.status == "draft"
    assert doc.version.startswith("unversioned-")
    assert doc.item_bank.area_codes == ("1", "2")
    assert doc.item_bank.n_categories.tolist() == [2, 2, 4]


def test_single_area_bank_is_valid():
    d = {"version": "one", "items": [{"id": "x", "area": "7", "model": "2pl", "a": 0.9, "b": -1.0}]}
    assert items.bank_from_dict(d).item_bank.area_codes == ("7",)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model": "4pl"}, "unknown model '4pl'"),
        ({"a": -0.4}, "discrimination a must be a finite number > 0 (got -0.4)"),
        ({"a": 0}, "discrimination a must be a finite number > 0 (got 0)"),
        ({"a": float("nan")}, "discrimination a must be a finite number > 0 (got nan)"),
        ({"a": "1.2"}, "discrimination a must be a finite number > 0 (got '1.2')"),
        ({"b": float("inf")}, "difficulty b must be a finite number (got inf)"),
        ({"c": 1.0}, "guessing c must lie in [0, 1) (got 1.0)"),
        ({"c": -0.1}, "guessing c must lie in [0, 1) (got -0.1)"),
        ({"status": "retired"}, "status must be one of operational, pretest (got 'retired')"),
        ({"ksa": "feeling"}, "ksa must be one of knowledge, skill, attitude (got 'feeling')"),
        ({"level": 6}, "level must be one of 1, 2, 3, 4, 5 (got 6)"),
        ({"area": 1}, 'area must be a code as text, such as "1" (got 1)'),
        ({"colour": "red"}, "unknown fields: colour"),
        ({"text": {"en": "Only English"}}, "text is missing the Vietnamese text (vi)"),
        ({"text": {"vi": "  "}}, "text.vi must be non-empty text (got '  ')"),
    ],
)
def test_each_problem_of_a_3pl_item_is_named(change, expected):
    d = bare_bank()
    d["items"][1].update(change)
    found = messages(validate_document(d), "b")
    assert any(expected in m for m in found), found
    with pytest.raises(items.BankError) as info:
        items.bank_from_dict(d)
    assert any(p.item_id == "b" and expected in p.message for p in info.value.problems)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("change", "remove", "expected"),
    [
        ({}, "b", "difficulty b is missing (a 2pl item needs b)"),
        ({"c": 0.2}, None, "guessing c is only for 3pl items (this is a 2pl item)"),
        ({"thresholds": [0.0]}, None, "a 2pl item has one difficulty b, not thresholds"),
        ({}, "model", "model is missing"),
        ({}, "a", "discrimination a is missing"),
        ({}, "area", "area is missing"),
        ({"key": 1}, None, "key is given but the item has no options"),
    ],
)
def test_each_problem_of_a_2pl_item_is_named(change, remove, expected):
    d = bare_bank()
    d["items"][0].update(change)
    if remove:
        del d["items"][0][remove]
    assert any(expected in m for m in messages(validate_document(d), "a")), validate_document(d)


def test_3pl_item_needs_guessing():
    d = bare_bank()
    del d["items"][1]["c"]
    assert any("guessing c is missing" in m for m in messages(validate_document(d), "b"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"thresholds": [0.5, 0.1, 1.2]},
            "thresholds must be strictly increasing (got 0.5, 0.1, 1.2)",
        ),
        ({"thresholds": [0.1, 0.1]}, "thresholds must be strictly increasing (got 0.1, 0.1)"),
        ({"thresholds": []}, "thresholds must be a non-empty list of numbers"),
        ({"thresholds": [0.0, None]}, "thresholds must be finite numbers"),
        ({"b": 0.0}, "a grm item has thresholds, not a single difficulty b"),
        ({"key": 0}, "key is only for multiple-choice (1pl/2pl/3pl) items"),
        (
            {"options": [{"vi": "Không"}, {"vi": "Có"}]},
            "a grm item with 3 thresholds needs 4 options (got 2)",
        ),
    ],
)
def test_each_problem_of_a_graded_item_is_named(change, expected):
    d = bare_bank()
    d["items"][2].update(change)
    assert any(expected in m for m in messages(validate_document(d), "c")), validate_document(d)


def test_missing_thresholds():
    d = bare_bank()
    del d["items"][2]["thresholds"]
    assert any("thresholds are missing" in m for m in messages(validate_document(d), "c"))


def test_multiple_choice_keys():
    d = bare_bank()
    options = [{"vi": f"Phương án {k}", "en": f"Option {k}"} for k in range(4)]
    d["items"][1].update(ksa="knowledge", options=options, key=4, text={"vi": "Câu hỏi?"})
    assert any(
        "key 4 is out of range: the item has 4 options (key 0..3)" in m
        for m in messages(validate_document(d), "b")
    )
    d["items"][1]["key"] = -1
    assert messages(validate_document(d), "b")
    del d["items"][1]["key"]
    assert any("needs a key" in m for m in messages(validate_document(d), "b"))
    d["items"][1]["key"] = 3
    assert validate_document(d) == []
    d["items"][1]["options"][2] = {"en": "no Vietnamese"}
    assert any(
        "option 3 is missing the Vietnamese text (vi)" in m
        for m in messages(validate_document(d), "b")
    )


def test_duplicate_ids_are_reported_once_per_repeat():
    d = bare_bank()
    d["items"].append(copy.deepcopy(d["items"][0]))
    d["items"].append(copy.deepcopy(d["items"][0]))
    dup = [p for p in validate_document(d) if "duplicate id" in p.message]
    assert [p.item_id for p in dup] == ["a", "a"]


def test_nfc_and_nfd_spellings_of_an_id_are_duplicates():
    d = bare_bank()
    d["items"][0]["id"] = "câu-1"
    d["items"][1]["id"] = "ca\u0302u-1"  # the same text in NFD
    with pytest.raises(items.BankError, match="duplicate id"):
        items.bank_from_dict(d)


def test_every_problem_is_reported_not_only_the_first():
    d = bare_bank()
    d["items"][0]["a"] = -1
    d["items"][1]["model"] = "rasch"
    d["items"][2]["thresholds"] = [2, 1]
    d["version"] = "has spaces"
    found = validate_document(d)
    assert {p.item_id for p in found} == {"a", "b", "c", None}
    assert len(found) >= 4


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": ""}, "version must be 1-64 letters"),
        ({"version": 3}, "version must be 1-64 letters"),
        ({"version": "v1", "parent": "v1"}, "parent must differ from version"),
        ({"parent": "bad parent"}, "parent must be null or a version id"),
        ({"status": "final"}, "bank status must be one of provisional, calibrated, draft"),
        ({"created": "yesterday"}, "created must be an ISO 8601 date-time"),
        ({"metadata": []}, "metadata must be an object"),
        (
            {"metadata": {"content_hash": "abc"}},
            "metadata.content_hash must be 64 lowercase hex digits",
        ),
        ({"items": []}, "items must be a non-empty list"),
        ({"extra": 1}, "unknown top-level fields: extra"),
    ],
)
def test_document_level_problems(change, expected):
    d = bare_bank()
    d.update(change)
    assert any(expected in m for m in messages(validate_document(d))), validate_document(d)


def test_an_area_without_operational_items_is_refused():
    d = bare_bank()
    d["items"][2]["status"] = "pretest"
    assert "area 2 has no operational items" in " ".join(messages(validate_document(d)))


def test_not_an_object():
    assert "must be a JSON object" in validate_document([1, 2])[0].message


# ----------------------------------------------------------------- framework


def with_framework(shipped: dict) -> dict:
    d = bare_bank()
    d["framework"] = copy.deepcopy(shipped["framework"])
    d["items"][0].update(competence="1.1", text={"vi": "Câu một"})
    d["items"][1].update(competence="1.2", text={"vi": "Câu hai"})
    d["items"][2].update(competence="2.1", text={"vi": "Câu ba"})
    return d


def test_framework_codes_are_checked(shipped):
    d = with_framework(shipped)
    assert validate_document(d) == []
    d["items"][0]["area"] = "9"
    d["items"][1]["competence"] = "1.9"
    d["items"][2]["competence"] = "1.1"
    found = validate_document(d)
    assert any("area '9' is not in the framework" in p.message for p in found if p.item_id == "a")
    assert any(
        "competence '1.9' is not in the framework" in p.message for p in found if p.item_id == "b"
    )
    assert any(
        "competence 1.1 belongs to area 1, not area 2" in p.message
        for p in found
        if p.item_id == "c"
    )


def test_items_need_text_when_there_is_a_framework(shipped):
    d = with_framework(shipped)
    del d["items"][0]["text"]
    assert any("text is missing" in m for m in messages(validate_document(d), "a"))


def test_framework_problems(shipped):
    d = with_framework(shipped)
    fw = d["framework"]
    fw["areas"].append(copy.deepcopy(fw["areas"][0]))
    fw["competences"][0]["area"] = "8"
    fw["levels"][2]["lower"] = 45
    fw["levels"][3]["name"] = {"en": "High"}
    found = " | ".join(messages(validate_document(d)))
    assert "duplicate area code '1'" in found
    assert "competence 1.1 belongs to area '8', which is not in the framework" in found
    assert "level bands must be contiguous" in found
    assert "level 4 name is missing the Vietnamese text (vi)" in found


def test_goals_and_basic_skills_are_checked(shipped):
    d = with_framework(shipped)
    d["items"][0]["basic_skills"] = ["online-payment", "self-protection"]
    d["items"][0]["goal"] = {"vi": "Trả tiền bằng mã QR", "en": "Pay with a QR code"}
    assert validate_document(d) == []
    d["items"][0]["basic_skills"] = ["online-payment", "online-payment"]
    d["items"][1]["basic_skills"] = ["flying"]
    d["items"][2]["basic_skills"] = "online-payment"
    d["items"][2]["goal"] = {"en": "Pay"}
    d["framework"]["basic_skills"].append({"code": "online-payment", "name": {"vi": "x"}})
    found = validate_document(d)
    assert "basic_skills lists a code twice" in " ".join(messages(found, "a"))
    assert (
        "basic skill(s) flying not in the framework (known: public-services, online-shopping, "
        "online-payment, self-protection, digital-platforms, online-payment)"
    ) in messages(found, "b")
    text_c = " | ".join(messages(found, "c"))
    assert "basic_skills must be a list of codes as text" in text_c
    assert "goal is missing the Vietnamese text (vi)" in text_c
    assert "framework: duplicate basic skill code 'online-payment'" in messages(found)
    # A bare bank names basic skills freely (there is no list to check them against).
    bare = bare_bank()
    bare["items"][0]["basic_skills"] = ["anything"]
    assert validate_document(bare) == []


def test_every_shipped_criterion_has_a_goal_and_basic_skills_are_covered(shipped):
    """The five basic skills provinces teach door to door are well covered by criteria."""
    doc = items.bank_from_dict(shipped)
    assert all(item.goal and item.goal.get("vi") and item.goal.get("en") for item in doc.items)
    codes = [skill.code for skill in doc.framework.basic_skills]
    assert codes == [
        "public-services",
        "online-shopping",
        "online-payment",
        "self-protection",
        "digital-platforms",
    ]
    counts = {code: sum(code in item.basic_skills for item in doc.items) for code in codes}
    assert min(counts.values()) >= 7, counts
    # The engine's arrays carry them too.
    bank = doc.item_bank
    assert bank.basic_skills[bank.index("4.2.01")] == ("self-protection", "online-payment")


# ----------------------------------------------------------------- JSON Schema


def test_schema_file_is_the_documented_schema():
    assert json.loads(Path(SCHEMA_PATH).read_text(encoding="utf-8")) == BANK_SCHEMA
    assert jsonschema_rs.meta.is_valid(BANK_SCHEMA)


def test_shipped_and_bare_banks_match_the_json_schema(shipped):
    validator = jsonschema_rs.Draft202012Validator(BANK_SCHEMA)
    assert validator.is_valid(shipped), [e.message for e in validator.iter_errors(shipped)][:5]
    assert validator.is_valid(bare_bank())


@pytest.mark.parametrize(
    ("index", "change"),
    [
        (0, {"a": -1.0}),
        (0, {"model": "4pl"}),
        (1, {"c": 1.5}),
        (0, {"c": 0.2}),
        (2, {"b": 0.0}),
        (2, {"thresholds": []}),
        (0, {"unknown": 1}),
    ],
)
def test_json_schema_and_validator_both_refuse(index, change):
    d = bare_bank()
    d["items"][index].update(change)
    validator = jsonschema_rs.Draft202012Validator(BANK_SCHEMA)
    assert not validator.is_valid(d)
    assert validate_document(d)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
item_like = st.fixed_dictionaries(
    {},
    optional={
        key: json_values
        | st.sampled_from(["2pl", "3pl", "grm", "1", "knowledge", "pretest"])
        | st.floats(-3, 3)
        | st.lists(st.floats(-3, 3), max_size=4)
        for key in (
            "id",
            "area",
            "model",
            "a",
            "b",
            "c",
            "thresholds",
            "key",
            "options",
            "text",
            "status",
            "level",
        )
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"items": st.lists(item_like, max_size=4)},
            optional={
                "version": json_values,
                "framework": json_values,
                "parent": json_values,
                "created": json_values,
            },
        ),
    )
)
def test_validator_never_raises_and_valid_means_loadable(document):
    problems = validate_document(document)
    assert all(isinstance(p, Problem) and p.message for p in problems)
    if not problems:
        doc = items.bank_from_dict(document)
        assert doc.item_bank.n_items == len(document["items"])
    else:
        with pytest.raises(items.BankError):
            items.bank_from_dict(document)
