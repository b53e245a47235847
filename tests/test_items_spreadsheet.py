"""CSV export/import for content teams: lossless round trips, row-numbered problems, text import."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nangluc import items
from nangluc.items.schema import BANK_SCHEMA
from nangluc.items.spreadsheet import BOM, bank_from_csv, bank_to_csv, import_csv, items_from_csv

jsonschema_rs = pytest.importorskip("jsonschema_rs")
SCHEMA_VALIDATOR = jsonschema_rs.Draft202012Validator(BANK_SCHEMA)


@pytest.fixture(scope="module")
def doc() -> items.BankDocument:
    return items.load_bank()


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix(BOM), newline="")))


def to_csv(rows: list[dict[str, str]], header: list[str], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return BOM + buffer.getvalue()


# ------------------------------------------------------------------ round trips


def test_shipped_bank_round_trips_json_csv_json(doc):
    text = bank_to_csv(doc)
    assert text.startswith(BOM)
    back = bank_from_csv(text, doc)
    assert back.to_dict() == doc.to_dict()
    assert back.content_hash == doc.content_hash


def test_shipped_bank_round_trips_csv_json_csv(doc):
    text = bank_to_csv(doc)
    assert bank_to_csv(bank_from_csv(text, doc)) == text


def test_csv_layout(doc):
    text = bank_to_csv(doc)
    header = next(csv.reader(io.StringIO(text.removeprefix(BOM))))
    assert header[:14] == [
        "id", "area", "competence", "ksa", "model", "level", "status",
        "a", "b", "c", "thresholds", "key", "text_vi", "text_en",
    ]  # fmt: skip
    assert header[14:17] == ["goal_vi", "goal_en", "basic_skills"]
    assert header[17:] == [f"option{k}_{lang}" for k in range(1, 5) for lang in ("vi", "en")]
    rows = {r["id"]: r for r in rows_of(text)}
    assert len(rows) == 173
    assert rows["4.2.01"]["basic_skills"] == "self-protection;online-payment"
    assert rows["4.2.01"]["goal_vi"] == "Không bao giờ đưa mã OTP cho bất kỳ ai"
    knowledge = next(i for i in doc.items if i.ksa == "knowledge")
    assert rows[knowledge.id]["key"] == str(
        knowledge.key + 1
    )  # 1-based: the option column's number
    grm = next(i for i in doc.items if i.model == "grm")
    assert rows[grm.id]["thresholds"] == ";".join(repr(t) for t in grm.thresholds)
    assert rows[grm.id]["b"] == rows[grm.id]["c"] == rows[grm.id]["key"] == ""


text_st = (
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
        min_size=1,
        max_size=12,
    ).filter(str.strip)  # spaces at the ends are allowed: loading trims them
)
vi_text = (
    st.sampled_from(
        [
            "Bạn có biết?",
            "Tôi tự làm được",
            "Mật khẩu",
            "Đồng ý",
            "Không",
            "Câu hỏi, có dấu phẩy; và chấm phẩy",
        ]
    )
    | text_st
)
number = st.floats(-4, 4, allow_nan=False, allow_infinity=False)


@st.composite
def item_dicts(draw, index: int) -> dict:
    model = draw(st.sampled_from(["2pl", "3pl", "grm"]))
    item: dict = {"id": f"{index + 1}.x", "area": draw(st.sampled_from(["1", "2", "ab"]))}
    if draw(st.booleans()):
        item["competence"] = draw(st.sampled_from(["1.1", "c-2"]))
    item["model"] = model
    item["a"] = draw(st.floats(0.01, 5))
    if draw(st.booleans()):
        item["level"] = draw(st.integers(1, 5))
    if model == "grm":
        n = draw(st.integers(1, 5))
        starts = sorted(set(draw(st.lists(number, min_size=n, max_size=n))))
        item["thresholds"] = starts
        item["ksa"] = draw(st.sampled_from(["skill", "attitude"]))
        n_options = len(starts) + 1
    else:
        item["b"] = draw(number)
        if model == "3pl":
            item["c"] = draw(st.floats(0, 0.99))
        n_options = draw(st.integers(2, 6))
        if draw(st.booleans()) or model == "3pl":
            item["ksa"] = "knowledge"
    if draw(st.booleans()):
        item["text"] = {
            "vi": draw(vi_text),
            **({"en": draw(text_st)} if draw(st.booleans()) else {}),
        }
    if draw(st.booleans()):
        item["options"] = [
            {"vi": draw(vi_text), **({"en": draw(text_st)} if draw(st.booleans()) else {})}
            for _ in range(n_options)
        ]
        if model != "grm" and (item.get("ksa") == "knowledge" or n_options != 2):
            item["ksa"] = "knowledge"
            item["key"] = draw(st.integers(0, n_options - 1))
    if draw(st.integers(0, 4)) == 0:
        item["se"] = {"a": draw(st.floats(0, 1))}
        if model == "grm":
            item["se"]["thresholds"] = [draw(st.floats(0, 1)) for _ in item["thresholds"]]
    if draw(st.integers(0, 4)) == 0:
        item["status"] = "pretest"
    return item


@st.composite
def banks(draw) -> dict:
    n = draw(st.integers(1, 6))
    its = [draw(item_dicts(i)) for i in range(n)]
    for area in {i["area"] for i in its}:
        # Every area needs an operational item to be scored.
        next(i for i in its if i["area"] == area).pop("status", None)
    return {"version": "h1", "status": "draft", "items": its}


@settings(max_examples=150, deadline=None)
@given(banks())
def test_random_banks_round_trip(d):
    assert SCHEMA_VALIDATOR.is_valid(d)  # the JSON Schema accepts what the validator accepts
    doc = items.bank_from_dict(d)
    bank = doc.item_bank
    assert bank.item_ids == tuple(i["id"] for i in d["items"])
    assert bank.discrimination.tolist() == [i["a"] for i in d["items"]]
    assert bank.n_categories.tolist() == [len(i.get("thresholds", [0])) + 1 for i in d["items"]]
    text = bank_to_csv(doc)
    back = bank_from_csv(text, doc)
    assert back.to_dict() == doc.to_dict()
    assert bank_to_csv(back) == text


# ------------------------------------------------------------------ import problems


def test_import_names_rows_and_items(doc):
    rows = rows_of(bank_to_csv(doc))
    header = list(rows[0])
    rows[0]["a"] = "-0.4"  # row 2
    rows[1]["a"] = "1,3"  # row 3: decimal comma
    rows[2]["thresholds"] = ""  # row 4: a 3pl item, fine
    rows[3]["model"] = "4pl"  # row 5
    rows[4]["id"] = rows[5]["id"]  # row 6 and 7 share an id
    k = next(i for i in range(8, len(rows)) if rows[i]["ksa"] == "knowledge" and i != 9)
    rows[k]["key"] = "5"  # only 4 options
    rows[9]["option2_vi"] = rows[9]["option2_en"] = ""  # row 11: a hole in the options
    with pytest.raises(items.BankError) as info:
        items_from_csv(to_csv(rows, header), framework=doc.framework.to_dict())
    found = {(p.row, p.item_id): p.message for p in info.value.problems}
    text = "\n".join(str(p) for p in info.value.problems)
    assert (
        f"row 3 (item {rows[1]['id']}): a must be a number (got '1,3') (use a dot as the decimal separator)"
        in text
    )
    assert (2, rows[0]["id"]) in found
    assert "discrimination a must be a finite number > 0 (got -0.4)" in found[(2, rows[0]["id"])]
    assert "unknown model '4pl'" in found[(5, rows[3]["id"])]
    assert found[(7, rows[5]["id"])] == "duplicate id (also row 6)"
    assert "key 4 is out of range: the item has 4 options" in found[(k + 2, rows[k]["id"])]
    assert "option 2 is empty but option 3 is filled" in found[(11, rows[9]["id"])]
    assert not any(p.row == 4 for p in info.value.problems)


def test_import_header_problems(doc):
    rows = rows_of(bank_to_csv(doc))
    header = [h for h in rows[0] if h != "model"] + ["colour"]
    for r in rows:
        r.pop("model")
        r["colour"] = "red"
    with pytest.raises(items.BankError) as info:
        items_from_csv(to_csv(rows, header))
    text = " | ".join(str(p) for p in info.value.problems)
    assert "row 1: unknown column 'colour'" in text
    assert "row 1: column 'model' is missing" in text


def test_semicolon_separated_csv_from_excel_is_read(doc):
    rows = rows_of(bank_to_csv(doc))
    text = to_csv(rows, list(rows[0]), delimiter=";")
    assert bank_from_csv(text, doc).to_dict() == doc.to_dict()


def test_empty_and_non_utf8_csv():
    from nangluc.items.spreadsheet import decode_csv

    with pytest.raises(items.BankError, match="empty"):
        items_from_csv("")
    with pytest.raises(items.BankError, match="not UTF-8"):
        decode_csv(b"C\xe2u h\xf3i")  # Windows-1258 bytes, not UTF-8


# ------------------------------------------------------------------ official text import


def test_text_import_replaces_wording_and_keeps_parameters(doc):
    rows = rows_of(bank_to_csv(doc))
    target = next(r for r in rows if r["ksa"] == "knowledge")
    official = {
        "id": target["id"],
        "text_vi": "Văn bản chính thức của tiêu chí?",
        "text_en": "",
        "option1_vi": "Một",
        "option2_vi": "Hai",
        "option3_vi": "Ba",
        "key": "3",
    }
    text = to_csv([official], list(official))
    new, notes = import_csv(text, doc, version="2024.10-p1-official", source_name="official.csv")
    assert new.parent == doc.version and new.version == "2024.10-p1-official"
    item, old = new.item(target["id"]), doc.item(target["id"])
    assert item.text == {"vi": "Văn bản chính thức của tiêu chí?"}
    assert [o["vi"] for o in item.options] == ["Một", "Hai", "Ba"]
    assert item.key == 2
    assert (item.a, item.b, item.c, item.level, item.model) == (
        old.a,
        old.b,
        old.c,
        old.level,
        old.model,
    )
    assert new.item_bank.discrimination.tolist() == doc.item_bank.discrimination.tolist()
    unchanged = [i for i in doc.items if i.id != target["id"]]
    assert all(new.item(i.id) == i for i in unchanged)
    assert "1 of 1 items in the CSV have new text" in notes[0]
    assert new.metadata["imported_from"]["file"] == "official.csv"


def test_text_import_replaces_goals_and_basic_skills(doc):
    row = {
        "id": "5.3.07",
        "goal_vi": "Trả tiền bằng mã QR",
        "goal_en": "Pay with a QR code",
        "basic_skills": "online-payment;online-shopping",
    }
    new, _ = import_csv(to_csv([row], list(row)), doc, version="2024.10-goals")
    item = new.item("5.3.07")
    assert item.goal == {"vi": "Trả tiền bằng mã QR", "en": "Pay with a QR code"}
    assert item.basic_skills == ("online-payment", "online-shopping")
    assert item.text == doc.item("5.3.07").text  # the text columns were not in the CSV
    bad = {"id": "5.3.07", "basic_skills": "flying"}
    with pytest.raises(items.BankError, match="basic skill"):
        import_csv(to_csv([bad], list(bad)), doc, version="2024.10-bad")


def test_text_import_refuses_changed_parameters_and_unknown_items(doc):
    rows = rows_of(bank_to_csv(doc))
    rows[0]["a"] = "1.99"
    rows[1]["id"] = "9.9.99"
    grm = next(r for r in rows[2:] if r["model"] == "grm")
    grm["option4_vi"] = grm["option4_en"] = ""  # 3 options for 3 thresholds
    with pytest.raises(items.BankError) as info:
        import_csv(to_csv(rows, list(rows[0])), doc, version="x2")
    text = "\n".join(str(p) for p in info.value.problems)
    assert f"row 2 (item {rows[0]['id']}): a is '1.99' but bank {doc.version} has" in text
    assert "row 3 (item 9.9.99): is not in bank" in text
    assert f"item {grm['id']}): a grm item with 3 thresholds needs 4 options (got 3)" in text


def test_full_import_gives_provisional_parameters_to_new_items(doc):
    rows = rows_of(bank_to_csv(doc))
    new_row = dict.fromkeys(rows[0], "")
    new_row.update(
        id="5.4.10",
        area="5",
        competence="5.4",
        ksa="skill",
        level="4",
        text_vi="Bạn tự dùng trợ lý AI để tóm tắt một văn bản dài được đến mức nào?",
        option1_vi="Chưa từng làm",
        option2_vi="Làm được khi có người hướng dẫn",
        option3_vi="Tự làm được",
        option4_vi="Làm thành thạo, hướng dẫn được người khác",
    )
    new, notes = import_csv(
        to_csv([*rows, new_row], list(rows[0])), doc, version="2024.10-p9", mode="full"
    )
    item = new.item("5.4.10")
    assert item.model == "grm" and len(item.thresholds) == 3
    assert new.status == "provisional"
    assert len(new) == 174
    assert all(new.item(i.id) == i for i in doc.items)
    assert "173 with their own parameters, 1 with provisional ones" in notes[0]
