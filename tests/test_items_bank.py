"""The shipped framework and bank, loading into the engine, versions, the provisional rule."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter

import numpy as np
import pytest

from nangluc import items
from nangluc.engine.bank import KINDS, MODELS
from nangluc.engine.scoring import LEVELS
from nangluc.items.bank import read_json
from nangluc.items.build import PLANNED_COUNTS, build_document
from nangluc.items.provisional import DISCRIMINATION, LOCATION_BY_LEVEL, provisional_parameters


@pytest.fixture(scope="module")
def doc() -> items.BankDocument:
    return items.load_bank()


def all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from all_strings(v)


# ------------------------------------------------------------------ framework


def test_framework_structure():
    fw = items.load_framework()
    assert [a.code for a in fw.areas] == ["1", "2", "3", "4", "5"]
    assert [c.code for c in fw.competences] == list(PLANNED_COUNTS)
    assert all(c.code.split(".")[0] == c.area for c in fw.competences)
    for entry in (*fw.areas, *fw.competences, *fw.levels):
        assert entry.name["vi"] and entry.name["en"]
    for c in fw.competences:
        assert c.description["vi"] and c.description["en"]
    assert fw.area("4").name["vi"] == "Bảo vệ và an toàn"


def test_framework_levels_agree_with_the_engine():
    fw = items.load_framework()
    assert [(v.code, v.lower, v.upper) for v in fw.levels] == [
        (1, 0, 20),
        (2, 20, 40),
        (3, 40, 60),
        (4, 60, 80),
        (5, 80, 100),
    ]
    for band, level in zip(fw.levels, LEVELS, strict=True):
        assert (band.name["vi"], band.name["en"], band.lower, band.upper) == (
            level.name_vi,
            level.name_en,
            level.lower,
            level.upper,
        )
    # A band's lower bound belongs to it.
    assert fw.level_of(20).code == 2
    assert fw.level_of(19.999).code == 1
    assert fw.level_of(100).code == 5


# ------------------------------------------------------------------ shipped bank


def test_shipped_bank_is_valid_and_provisional(doc):
    assert items.validate_document(read_json(items.DEFAULT_BANK_PATH)) == []
    assert doc.status == "provisional"
    assert doc.parent == "2024.10-p2"  # p3 added learning goals and basic skills
    assert doc.hash_matches
    source = doc.metadata["parameter_source"]
    assert source["provisional"] is True
    assert source["method"] == "nangluc-provisional-1"


def test_shipped_bank_has_173_criteria_over_17_competences(doc):
    assert len(doc.items) == 173
    counts = Counter(i.competence for i in doc.items)
    assert dict(counts) == PLANNED_COUNTS
    for item in doc.items:
        assert re.fullmatch(r"\d\.\d\.\d\d", item.id)
        assert item.id.startswith(item.competence + ".")
        assert item.area == item.competence.split(".")[0]
        assert item.level in (1, 2, 3, 4, 5)
        assert item.text["vi"] and item.text["en"]
        assert all(o["vi"] and o["en"] for o in item.options)


def test_every_area_has_all_three_kinds_and_every_competence_knowledge_and_skill(doc):
    for area in "12345":
        kinds = Counter(i.ksa for i in doc.items if i.area == area)
        assert set(kinds) == {"knowledge", "skill", "attitude"}, (area, kinds)
        assert kinds["attitude"] >= 2
    for comp in PLANNED_COUNTS:
        kinds = {i.ksa for i in doc.items if i.competence == comp}
        assert {"knowledge", "skill"} <= kinds, comp


def test_item_formats_match_their_kind(doc):
    for item in doc.items:
        assert len(item.options) == 4, item.id
        if item.ksa == "knowledge":
            assert item.model == "3pl" and item.key is not None and item.c == 0.25
        else:
            assert item.model == "grm" and item.key is None and len(item.thresholds) == 3
    keys = Counter(i.key for i in doc.items if i.ksa == "knowledge")
    assert len(keys) == 4, f"the correct option should not always be in the same place: {keys}"


def test_levels_are_spread_within_competences(doc):
    for comp in PLANNED_COUNTS:
        levels = {i.level for i in doc.items if i.competence == comp}
        assert len(levels) >= 3, (comp, levels)


def test_shipped_file_is_nfc_utf8():
    raw = items.DEFAULT_BANK_PATH.read_bytes()
    text = raw.decode("utf-8")
    assert unicodedata.is_normalized("NFC", text)
    assert all(unicodedata.is_normalized("NFC", s) for s in all_strings(json.loads(text)))
    assert "Bắt đầu" in text  # stored as characters, not \\u escapes
    for path in (
        items.FRAMEWORK_PATH,
        *sorted(items.DEFAULT_BANK_PATH.parent.parent.glob("source/area*.json")),
    ):
        assert unicodedata.is_normalized("NFC", path.read_text(encoding="utf-8")), path


def test_shipped_bank_is_what_the_build_makes(doc):
    """Nobody edited bank.json by hand: rebuilding from the sources gives the same content."""
    rebuilt = build_document(version=doc.version, parent=doc.parent, created=doc.created)
    assert rebuilt.content_hash == doc.content_hash
    assert rebuilt.to_dict() == doc.to_dict()


# ------------------------------------------------------------------ engine arrays


def test_item_bank_arrays_match_the_document(doc):
    bank = doc.item_bank
    assert bank.version == doc.version
    assert bank.item_ids == doc.item_ids
    assert bank.area_codes == ("1", "2", "3", "4", "5")
    for i, item in enumerate(doc.items):
        assert bank.area_codes[bank.area[i]] == item.area
        assert bank.competence[i] == item.competence
        assert KINDS[bank.kind[i]] == item.ksa
        assert MODELS[bank.model[i]] == item.model
        assert bank.discrimination[i] == item.a
        assert bank.guessing[i] == (item.c or 0.0)
        assert bank.n_categories[i] == item.n_categories
        k = len(item.thresholds)
        assert bank.thresholds[i, :k].tolist() == list(item.thresholds)
        assert np.all(np.isinf(bank.thresholds[i, k:]))
        assert bank.operational[i] == item.operational
    assert doc.item("2.1.01").id == "2.1.01"
    with pytest.raises(KeyError, match="not in bank"):
        doc.item("9.9.99")


def test_pretest_items_are_not_operational():
    d = {
        "version": "p1",
        "items": [
            {"id": "x", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0},
            {"id": "y", "area": "1", "model": "2pl", "a": 1.0, "b": 1.0, "status": "pretest"},
        ],
    }
    assert items.bank_from_dict(d).item_bank.operational.tolist() == [True, False]


def test_item_bank_is_cached_per_version_and_content(doc, tmp_path):
    assert doc.item_bank is doc.item_bank
    path = tmp_path / "bank.json"
    items.write_bank(doc, path)
    again = items.load_bank(path)
    assert again is not doc
    assert again.item_bank is doc.item_bank  # same version and content: one shared array object
    assert items.load_bank(path) is again  # unchanged file: same document
    changed = items.new_version(doc, version="test-child", items=doc.items[:-1])
    assert changed.item_bank is not doc.item_bank
    assert changed.item_bank.n_items == 172


def test_score_option(doc):
    knowledge = next(i for i in doc.items if i.ksa == "knowledge")
    assert knowledge.score_option(knowledge.key) == 1
    assert knowledge.score_option((knowledge.key + 1) % 4) == 0
    skill = next(i for i in doc.items if i.ksa == "skill")
    assert [skill.score_option(k) for k in range(4)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="option must be a whole number 0..3"):
        skill.score_option(4)


# ------------------------------------------------------------------ versions


def test_new_version_records_its_parent(doc):
    child = items.new_version(doc, version="2024.10-p9", status="draft")
    assert child.parent == doc.version
    assert child.version == "2024.10-p9"
    assert child.content_hash == doc.content_hash
    assert child.created is not None
    with pytest.raises(items.BankError, match="parent must differ from version"):
        items.new_version(doc, version=doc.version)


def test_published_versions_are_immutable(doc, tmp_path):
    path = tmp_path / "bank.json"
    items.write_bank(doc, path)
    items.write_bank(doc, path)  # the same content again is fine
    before = path.read_bytes()
    edited = doc.to_dict()
    edited["items"][0]["a"] = 1.99
    with pytest.raises(
        items.BankError, match="already holds version 2024.10-p3 with different content"
    ):
        items.write_bank(edited, path)
    assert path.read_bytes() == before
    # A new version may replace the file.
    child = items.new_version(doc, version="2024.10-p9", items=items.bank_from_dict(edited).items)
    items.write_bank(child, path)
    assert items.load_bank(path).parent == doc.version


def test_written_files_are_readable_by_everyone(doc, tmp_path):
    path = tmp_path / "bank.json"
    items.write_bank(doc, path)
    assert path.stat().st_mode & 0o777 == 0o644
    assert items.DEFAULT_BANK_PATH.stat().st_mode & 0o044 == 0o044


def test_drafts_may_be_rewritten(tmp_path):
    d = {
        "version": "d1",
        "status": "draft",
        "items": [{"id": "x", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0}],
    }
    path = tmp_path / "draft.json"
    items.write_bank(d, path)
    d["items"][0]["b"] = 0.5
    items.write_bank(d, path)
    assert items.load_bank(path).items[0].b == 0.5


def test_invalid_bank_is_never_written(tmp_path):
    path = tmp_path / "bank.json"
    with pytest.raises(items.BankError):
        items.write_bank(
            {"items": [{"id": "x", "area": "1", "model": "2pl", "a": -1, "b": 0}]}, path
        )
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_whole(doc, tmp_path, monkeypatch):
    path = tmp_path / "bank.json"
    items.write_bank(doc, path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("nangluc.items.bank.os.replace", broken_replace)
    with pytest.raises(OSError):
        items.write_bank(items.new_version(doc, version="2024.10-p9"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bank.json"]


def test_write_refuses_to_replace_a_file_that_is_not_a_bank(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(items.BankError, match="not a valid bank"):
        items.write_bank(
            {"items": [{"id": "x", "area": "1", "model": "2pl", "a": 1, "b": 0}]}, path
        )
    assert path.read_text(encoding="utf-8") == "hello"


def test_edited_file_is_detected_by_its_hash(doc, tmp_path):
    d = doc.to_dict()
    d["items"][0]["a"] = 1.11  # edited by hand, hash left as it was
    loaded = items.bank_from_dict(d)
    assert not loaded.hash_matches
    assert loaded.content_hash != doc.content_hash
    assert loaded.to_dict()["metadata"]["content_hash"] == loaded.content_hash


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "bank file not found"),
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b'{"items": [], "items": []}', "repeats keys"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bank.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(items.BankFileError, match=message):
        items.load_bank(path)


def test_load_bank_reports_every_problem_with_the_path(tmp_path):
    path = tmp_path / "bad.json"
    d = {
        "items": [
            {"id": "x", "area": "1", "model": "2pl", "a": -1, "b": 0},
            {"id": "x", "area": "1", "model": "grm", "a": 1, "thresholds": [1, 0]},
        ]
    }
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(items.BankError) as info:
        items.load_bank(path)
    assert str(path) in str(info.value)
    assert [p.item_id for p in info.value.problems] == ["x", "x", "x"]


# ------------------------------------------------------------------ provisional rule


def test_provisional_rule_is_deterministic_and_per_item():
    item = {
        "id": "9.9.01",
        "ksa": "skill",
        "level": 3,
        "options": [{"vi": str(k)} for k in range(4)],
    }
    assert provisional_parameters(item) == provisional_parameters(dict(item))
    assert provisional_parameters(item, seed=1) != provisional_parameters(item, seed=2)
    other = dict(item, id="9.9.02")
    assert provisional_parameters(other) != provisional_parameters(item)


def test_provisional_parameters_follow_the_stated_rule(doc):
    for item in doc.items:
        median, _, low, high = DISCRIMINATION[item.ksa]
        assert low <= item.a <= high
        location = LOCATION_BY_LEVEL[item.level]
        if item.model == "3pl":
            assert abs(item.b - location) <= 0.5 + 1e-9
            assert item.c == pytest.approx(1 / len(item.options))
        else:
            middle = item.thresholds[1]
            assert abs(middle - location) <= 0.5 + 1e-9
            steps = np.diff(item.thresholds)
            assert np.all((steps >= 0.8 - 0.011) & (steps <= 1.2 + 0.011))
    # Difficulty follows the authors' levels on average (the rule has no other information).
    mean_location = {
        level: np.mean(
            [i.b if i.model == "3pl" else i.thresholds[1] for i in doc.items if i.level == level]
        )
        for level in range(1, 6)
    }
    assert list(mean_location.values()) == sorted(mean_location.values())


def test_provisional_rule_refuses_items_without_a_level():
    with pytest.raises(ValueError, match="needs a level 1..5"):
        provisional_parameters({"id": "x", "ksa": "skill"})
    with pytest.raises(ValueError, match="unknown ksa"):
        provisional_parameters({"id": "x", "ksa": "mood", "level": 2})
