"""Reading and validating response CSVs: clear errors, nothing guessed."""

from __future__ import annotations

import io

import numpy as np
import pytest

import nangluc.calibration.data as data_module
from nangluc.calibration import ResponseDataError, read_responses
from nangluc.items import bank_from_dict

BANK = bank_from_dict(
    {
        "version": "t1",
        "status": "calibrated",
        "items": [
            {"id": "1.1.01", "area": "1", "model": "2pl", "a": 1.0, "b": 0.0},
            {"id": "1.1.02", "area": "1", "model": "grm", "a": 1.2, "thresholds": [-1.0, 0.0, 1.0]},
            {"id": "2.1.01", "area": "2", "model": "3pl", "a": 1.1, "b": 0.5, "c": 0.2},
        ],
    }
)


def problems(text: str, **kwargs) -> list[str]:
    with pytest.raises(ResponseDataError) as info:
        read_responses(io.StringIO(text), **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_reads_long_csv_with_extra_columns():
    text = "ward,respondent_id,item_id,response,age_group\nA,p1,1.1.01,1,60+\nA,p1,1.1.02,3,60+\nB,p2,1.1.01,0,18-29\n"
    data = read_responses(io.StringIO(text), bank=BANK)
    assert data.n_respondents == 2 and data.n_responses == 3
    assert data.item_ids == ("1.1.01", "1.1.02")
    assert data.n_categories.tolist() == [2, 4]
    assert data.areas == ("1", "1")
    assert sorted(
        zip(data.person.tolist(), data.item.tolist(), data.response.tolist(), strict=True)
    ) == [(0, 0, 1), (0, 1, 3), (1, 0, 0)]


def test_without_bank_areas_come_from_ids_or_area_column():
    data = read_responses(
        io.StringIO("respondent_id,item_id,response\np,3.2.07,2\np,x9,0\nq,x9,1\n")
    )
    assert data.areas == ("3", "1")
    assert data.competences == ("3.2", "")
    assert data.n_categories.tolist() == [3, 2]
    data = read_responses(io.StringIO("respondent_id,item_id,response,area\np,q1,1,A\nq,q2,0,B\n"))
    assert data.areas == ("A", "B")


def test_empty_file_and_header_only(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ResponseDataError, match="empty"):
        read_responses(empty)
    assert "no responses" in problems("respondent_id,item_id,response\n")[0]


def test_not_a_csv_file(tmp_path):
    assert "missing column" in problems('{"items": [1, 2, 3]}\n')[0]
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR")
    with pytest.raises(ResponseDataError, match="binary"):
        read_responses(binary)
    with pytest.raises(ResponseDataError, match="not found"):
        read_responses(tmp_path / "missing.csv")


def test_missing_columns_are_named():
    message = problems("person,item_id,answer\np,1.1.01,1\n")[0]
    assert "respondent_id" in message and "response" in message


def test_unknown_item_ids_are_listed():
    message = " ".join(
        problems("respondent_id,item_id,response\np,1.1.01,1\np,9.9.99,0\nq,zz,1\n", bank=BANK)
    )
    assert "9.9.99" in message and "zz" in message and "not in bank t1" in message


def test_out_of_range_responses_give_line_numbers():
    text = "respondent_id,item_id,response\np,1.1.01,1\np,1.1.02,4\nq,1.1.01,2\nq,2.1.01,-1\n"
    message = " ".join(problems(text, bank=BANK))
    assert "line 3" in message and "line 4" in message and "line 5" in message
    assert "expected 0..3" in message and "expected 0..1" in message


def test_non_integer_responses_give_line_numbers():
    message = " ".join(
        problems("respondent_id,item_id,response\np,1.1.01,yes\nq,1.1.01,1.5\nr,1.1.01,1\n")
    )
    assert "line 2" in message and "line 3" in message and "whole numbers" in message


def test_blank_response_is_not_a_response():
    message = " ".join(problems("respondent_id,item_id,response\np,1.1.01,\nq,1.1.01,1\n"))
    assert "line 2" in message and "whole numbers" in message


def test_blank_ids_and_duplicates():
    assert "empty respondent_id" in problems("respondent_id,item_id,response\n,1.1.01,1\n")[0]
    message = problems("respondent_id,item_id,response\np,1.1.01,1\np,1.1.01,0\n")[0]
    assert "more than once" in message and "p/1.1.01" in message


def test_too_many_categories_without_bank():
    assert "expected 0..9" in problems("respondent_id,item_id,response\np,x,12\n")[0]


def test_standard_library_reader_matches_pyarrow(monkeypatch):
    text = "respondent_id,item_id,response,ward\n" + "".join(
        f"p{p},{item},{(p * 7 + k) % 2},w\n"
        for p in range(30)
        for k, item in enumerate(["1.1.01", "2.1.01"])
    )
    fast = read_responses(io.StringIO(text), bank=BANK)
    monkeypatch.setattr(
        data_module,
        "_parse",
        lambda raw, header: data_module._parse_stdlib(raw, header, [*data_module.REQUIRED_COLUMNS]),
    )
    slow = read_responses(io.StringIO(text), bank=BANK)
    assert fast.item_ids == slow.item_ids

    def key(d):
        return sorted(
            zip(
                np.array(d.respondent_ids)[d.person],
                d.item.tolist(),
                d.response.tolist(),
                strict=True,
            )
        )

    assert key(fast) == key(slow)
    with pytest.raises(ResponseDataError, match="line"):
        read_responses(io.StringIO("respondent_id,item_id,response\np,1.1.01,x\n"), bank=BANK)


def test_from_arrays_validates_like_the_reader():
    from nangluc.calibration import ResponseData

    with pytest.raises(ResponseDataError, match="no responses"):
        ResponseData.from_arrays([], [], [])
    with pytest.raises(ResponseDataError, match="differ in length"):
        ResponseData.from_arrays(["p"], ["1.1.01", "1.1.02"], [1])
    with pytest.raises(ResponseDataError, match="not in bank"):
        ResponseData.from_arrays(["p"], ["x"], [1], bank=BANK)
    data = ResponseData.from_arrays(["p", "q"], ["1.1.02", "1.1.02"], [3, 0], bank=BANK)
    assert data.n_categories.tolist() == [4] and data.response.tolist() == [3, 0]
