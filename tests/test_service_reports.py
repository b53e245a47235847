"""Planner reports through the API, on SQLite and PostgreSQL: access, every cut, cohorts, CSV.

One database per backend is filled once (module scope) with simulated
finished tests in a past quarter, stored as the service stores them
(:mod:`nangluc.service.synthetic`), and with cohort tests before and after a
training. Every report is then computed from the releases the first report
draws.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from nangluc.engine import CITIZEN_TEST
from nangluc.service import releases, synthetic
from nangluc.service.db import BANK, COHORT, RELEASE
from nangluc.service.wards import ward_key
from nangluc.simulations import draw_population
from service_fixtures import ADMIN_KEY, DATABASES, PLANNER_KEY, app_client, fresh_database

API = "/api/v1"
PLANNER = {"X-API-Key": PLANNER_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
IN_Q2 = datetime(2026, 5, 12, 3, 0, tzinfo=UTC)
IN_Q3 = datetime(2026, 8, 20, 3, 0, tzinfo=UTC)
#: Spellings of one ward that must land in one group (the issue's finding).
HAI_CHAU = ("Hải Châu", "Phường Hải Châu", "phường hải châu", "P. Hải Châu", "hai chau")


def _bank(db):
    with db.engine.connect() as conn:
        return db.banks.get(db.banks.active_version(conn)).bank


def _fill(db, rng: np.random.Generator) -> dict[str, Any]:
    """Finished tests: two large wards (one well below the prior), age groups, a cohort."""
    bank = _bank(db)
    with db.engine.begin() as conn:
        conn.execute(BANK.update().values(created=datetime(2026, 4, 2, tzinfo=UTC)))
    rows: list[dict[str, Any]] = []
    truth: dict[str, np.ndarray] = {}
    for ward, mean, n in (("hai-chau", -1.0, 700), ("hoa-vang", 0.3, 500)):
        theta = draw_population(n, bank.n_areas, 0.7, rng, mean=mean)
        texts = (
            [HAI_CHAU[i % len(HAI_CHAU)] for i in range(n)] if ward == "hai-chau" else "Xã Hòa Vang"
        )
        ages = list(rng.choice(["25-34", "65+"], n))
        part, true_scores = synthetic.simulated_rows(
            bank, CITIZEN_TEST, theta, rng, finished=IN_Q2, ward=texts, age_group=ages
        )
        rows += part
        truth[ward] = true_scores
    part, _ = synthetic.simulated_rows(
        bank,
        CITIZEN_TEST,
        draw_population(40, bank.n_areas, 0.7, rng),
        rng,
        finished=IN_Q3,
        ward="Không rõ nơi nào",
        age_group=None,
    )
    rows += part
    synthetic.insert_rows(db.engine, rows)
    return {"truth": truth}


def _cohort(client, db, rng: np.random.Generator, name: str) -> str:
    made = client.post(
        f"{API}/reports/cohorts/new", json={"name": name, "days": 30}, headers=PLANNER
    )
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert made.json()["links"]["before"] == f"/?cohort={code}&phase=before"
    bank = _bank(db)
    rows: list[dict[str, Any]] = []
    for phase, mean in (("before", -1.2), ("after", 0.2)):
        part, _ = synthetic.simulated_rows(
            bank,
            CITIZEN_TEST,
            draw_population(400, bank.n_areas, 0.7, rng, mean=mean),
            rng,
            finished=IN_Q2,
            ward="Hải Châu",
            cohort=code,
            phase=phase,
        )
        rows += part
    synthetic.insert_rows(db.engine, rows)
    with db.engine.begin() as conn:
        conn.execute(
            COHORT.update()
            .where(COHORT.c.code == code)
            .values(created=IN_Q2 - timedelta(days=5), closes=IN_Q2 + timedelta(days=1))
        )
    return code


@pytest.fixture(scope="module", params=DATABASES)
def filled(request, tmp_path_factory):
    directory: Path = tmp_path_factory.mktemp("reports")
    with (
        fresh_database(request.param, directory) as url,
        app_client(url, directory, report_simulees=2000) as client,
    ):
        db = client.app.state.db
        rng = np.random.default_rng(13)
        info = _fill(db, rng)
        info["cohort"] = _cohort(client, db, rng, '=HYPERLINK("http://x") lớp A')
        yield client, db, info


def _get(client, **params) -> dict:
    reply = client.get(f"{API}/reports/levels", params=params, headers=PLANNER)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _group(report: dict, key: str) -> dict:
    return next(g for g in report["groups"] if g["key"] == key)


def test_reports_need_a_planner_key(filled) -> None:
    client, _, _ = filled
    assert client.get(f"{API}/reports/levels").status_code == 401
    assert client.get(f"{API}/reports/levels", headers={"X-API-Key": "nope"}).status_code == 403
    # An administrator's key is another role's key.
    assert client.get(f"{API}/reports/levels", headers=ADMIN).status_code == 403
    assert client.get(f"{API}/reports/levels.csv").status_code == 401
    assert client.get(f"{API}/reports/releases").status_code == 401
    assert client.post(f"{API}/reports/cohorts/new", json={"name": "x"}).status_code == 401
    # And a planner's key opens no administrator endpoint.
    assert client.get(f"{API}/admin/wards/unmatched", headers=PLANNER).status_code == 403
    assert client.get(f"{API}/admin/banks", headers=PLANNER).status_code == 403


def test_ward_report_groups_spellings_and_estimates_true_levels(filled) -> None:
    client, _, info = filled
    report = _get(client, group_by="ward")
    assert report["privacy"]["epsilon"] == 1.0 and "ε = 1" in report["privacy"]["protects"]
    assert "period:2026-Q2" in report["window"]["releases"]
    keys = [g["key"] for g in report["groups"]]
    # Every unit of the ward list, plus "other" and "none": the cells do not depend on the data.
    assert len(keys) == 96 and keys[-2:] == ["other", "none"]
    hai_chau = _group(report, "hai-chau")
    # Five spellings, one group holding all of its 700 tests (within the count's noise).
    assert hai_chau["shown"] and hai_chau["label"] == "Phường Hải Châu"
    # The count carries its noise: 700 lies within 4.5 of its SDs (a 95% interval
    # would miss one run in twenty).
    count_sd = (hai_chau["tests"]["high"] - hai_chau["tests"]["low"]) / 3.92
    assert abs(hai_chau["tests"]["value"] - 700) <= 4.5 * count_sd
    shares = [lv["value"] for lv in hai_chau["levels"]]
    assert abs(sum(shares) - 1) < 1e-3
    for level in hai_chau["levels"]:
        assert level["low"] <= level["value"] <= level["high"]
    # The ward's true level shares, from the simulees' true scores, lie in the intervals
    # for the two levels that hold most of it (a 95% interval may miss a rarer one).
    true = info["truth"]["hai-chau"]
    true_shares = (
        np.bincount(np.searchsorted([20, 40, 60, 80], true, side="right"), minlength=5) / true.size
    )
    main = np.argsort(true_shares)[-2:]
    for k in main:
        level = hai_chau["levels"][k]
        assert level["low"] - 0.05 <= true_shares[k] <= level["high"] + 0.05
    assert hai_chau["mean"]["low"] <= hai_chau["mean"]["value"] <= hai_chau["mean"]["high"]
    hoa_vang = _group(report, "hoa-vang")
    assert hoa_vang["shown"] and hoa_vang["mean"]["value"] > hai_chau["mean"]["value"] + 5
    # A ward nobody named in the period shows no shares.
    assert not _group(report, "hoa-cuong")["shown"]
    assert _group(report, "hoa-cuong")["levels"] == []


def test_same_question_same_answer(filled) -> None:
    client, _, _ = filled
    first = _get(client, group_by="ward", measure="1")
    again = _get(client, group_by="ward", measure="1")
    assert first == again
    # Windows that hold the same whole periods are the same question: same figures.
    window = _get(client, group_by="ward", **{"from": "2026-04-01", "to": "2026-06-30"})
    wider = _get(client, group_by="ward", **{"from": "2026-03-20", "to": "2026-07-30"})
    assert window["window"]["releases"] == wider["window"]["releases"] == ["period:2026-Q2"]
    assert window["groups"] == wider["groups"]


def test_every_cut(filled) -> None:
    client, _, _ = filled
    city = _get(client, group_by="all", language="en")
    assert [g["key"] for g in city["groups"]] == ["all"] and city["groups"][0][
        "label"
    ] == "Whole city"
    assert city["levels"][2] == {"level": 3, "name": "Intermediate", "lower": 40.0, "upper": 60.0}
    assert city["min_group"] == 20
    ages = _get(client, group_by="age_group", at_least=3)
    assert [g["key"] for g in ages["groups"]][-1] == "none"
    shown = [g for g in ages["groups"] if g["shown"]]
    assert {g["key"] for g in shown} >= {"25-34", "65+"}
    for g in shown:
        top = sum(lv["value"] for lv in g["levels"][2:])
        assert g["at_least"]["level"] == 3 and abs(g["at_least"]["value"] - top) < 2e-3
    crossed = _get(client, group_by="ward_age_group")
    assert len(crossed["groups"]) == 96 * 8
    assert _group(crossed, "hai-chau|65+")["label"] == "Phường Hải Châu · 65+"
    assert _group(crossed, "hai-chau|65+")["shown"]
    area = _get(client, group_by="all", measure="5", at_least=3)
    assert area["measure"]["kind"] == "area" and area["measure"]["code"] == "5"
    competence = _get(client, group_by="all", measure="5.2", at_least=3, language="en")
    assert competence["measure"]["kind"] == "competence"
    assert any("competence" in note for note in competence["notes"])
    empty = _get(client, group_by="ward", **{"from": "2025-01-01", "to": "2025-12-31"})
    assert empty["window"]["releases"] == [] and not any(g["shown"] for g in empty["groups"])


def test_bad_questions_get_clear_400s(filled) -> None:
    client, _, _ = filled
    for params, status, words in (
        ({"group_by": "name"}, 400, "group_by"),
        ({"measure": "9.9"}, 404, "there is no '9.9'"),
        # A level code the active framework does not have, like an unknown measure.
        ({"at_least": 7}, 404, "at_least must be a level code of the framework (1, 2, 3, 4, 5)"),
        ({"from": "2026-13-01"}, 400, "from"),
    ):
        reply = client.get(f"{API}/reports/levels", params=params, headers=PLANNER)
        assert reply.status_code == status, (params, reply.text)
        assert words in reply.json()["detail"] + str(reply.json().get("extra")), reply.json()
    # A window that ends before it starts holds no period.
    empty = _get(client, **{"from": "2026-06-01", "to": "2026-05-01"})
    assert empty["window"]["releases"] == [] and not empty["groups"][0]["shown"]


def test_cohort_before_after_change(filled) -> None:
    client, _, info = filled
    report = _get(client, group_by="cohort", at_least=3)
    cohort = _group(report, info["cohort"])
    assert cohort["before"]["shown"] and cohort["after"]["shown"]
    change = cohort["change"]
    assert change["shown"]
    # Trained simulees are 1.4 SD stronger: the mean rises, with an interval above zero.
    assert change["mean"]["low"] > 0
    assert change["at_least"]["value"] > 0
    listed = client.get(f"{API}/reports/cohorts", headers=PLANNER).json()
    assert next(c for c in listed if c["code"] == info["cohort"])["status"] == "released"


def test_csv_download_escapes_formulas(filled) -> None:
    client, _, info = filled
    reply = client.get(f"{API}/reports/levels.csv", params={"group_by": "cohort"}, headers=PLANNER)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["group", "label", "phase", "measure"]
    labels = {row[1] for row in rows[1:]}
    # The cohort's name begins with "=": the cell is text, not a formula.
    assert labels == {'\'=HYPERLINK("http://x") lớp A'}
    assert {row[2] for row in rows[1:]} == {"before", "after", "change"}
    wards = client.get(f"{API}/reports/levels.csv", params={"group_by": "ward"}, headers=PLANNER)
    assert "Phường Hải Châu" in wards.text


def test_cohort_links_tag_anonymous_tests(filled) -> None:
    client, _, _ = filled
    code = client.post(
        f"{API}/reports/cohorts/new", json={"name": "Lớp B"}, headers=PLANNER
    ).json()["code"]
    started = client.post(
        f"{API}/sessions", json={"cohort": {"code": code.lower(), "phase": "before"}}
    )
    assert started.status_code == 201, started.text
    for body, status, words in (
        ({"cohort": {"code": "ZZZZZZ", "phase": "before"}}, 404, "no training cohort"),
        ({"cohort": {"code": code}}, 400, "phase"),
        ({"cohort": {"code": code, "phase": "during"}}, 400, "phase"),
        ({"cohort": code}, 400, "cohort"),
    ):
        reply = client.post(f"{API}/sessions", json=body)
        assert reply.status_code == status, reply.text
        assert words in reply.json()["detail"] + str(reply.json().get("extra", ""))
    closed = client.post(f"{API}/reports/cohorts/{code}/close", headers=PLANNER)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = client.post(f"{API}/sessions", json={"cohort": {"code": code, "phase": "after"}})
    assert late.status_code == 409 and "closed" in late.json()["detail"]
    assert client.post(f"{API}/reports/cohorts/NOPE99/close", headers=PLANNER).status_code == 404


def test_admin_sees_and_maps_the_other_group(filled) -> None:
    client, db, _ = filled
    _get(client, group_by="all")  # draws the releases due
    unmatched = client.get(f"{API}/admin/wards/unmatched", headers=ADMIN).json()
    assert [(u["example"], u["tests"]) for u in unmatched] == [("Không rõ nơi nào", 40)]
    assert unmatched[0]["key"] == ward_key("không rõ nơi nào")
    bad = client.post(
        f"{API}/admin/wards/aliases",
        json={"text": "Không rõ nơi nào", "code": "atlantis"},
        headers=ADMIN,
    )
    assert bad.status_code == 404 and "atlantis" in bad.json()["detail"]
    taken = client.post(
        f"{API}/admin/wards/aliases",
        json={"text": "P. Hải Châu", "code": "hoa-xuan"},
        headers=ADMIN,
    )
    assert taken.status_code == 409 and "already matches" in taken.json()["detail"]
    mapped = client.post(
        f"{API}/admin/wards/aliases",
        json={"text": "không rõ  nơi nào", "code": "hoa-xuan"},
        headers=ADMIN,
    )
    assert mapped.status_code == 201, mapped.text
    assert client.get(f"{API}/admin/wards/unmatched", headers=ADMIN).json() == []
    # Releases already drawn stay as they were; the next one counts the text in Hòa Xuân.
    with db.engine.connect() as conn:
        released = set(conn.execute(sa.select(RELEASE.c.key)).scalars())
    assert "period:2026-Q3" in released


def test_releases_are_listed_with_their_epsilon(filled) -> None:
    client, _, _ = filled
    listed = client.get(f"{API}/reports/releases", headers=PLANNER).json()
    keys = [r["key"] for r in listed]
    assert "period:2026-Q2" in keys and all(r["epsilon"] == 1.0 for r in listed)


def test_public_ward_list() -> None:
    from nangluc.service.wards import load_wards

    wards = load_wards()
    assert len(wards.units) == 94
    kinds = [u.kind for u in wards.units]
    assert kinds.count("phường") == 23 and kinds.count("xã") == 70 and kinds.count("đặc khu") == 1
    assert "1659/NQ-UBTVQH15" in wards.source and wards.as_of == "2025-07-01"


def test_windows_at_the_ends_of_the_calendar_bound_nothing(filled) -> None:
    """``from=0001-01-01`` gave 500 (schemathesis): its UTC start is in year 0."""
    client, _, _ = filled
    everything = _get(client, group_by="ward")
    for window in (
        {"from": "0001-01-01"},
        {"to": "9999-12-31"},
        {"from": "0001-01-01", "to": "9999-12-31"},
    ):
        report = _get(client, group_by="ward", **window)
        assert report["groups"] == everything["groups"], window
        assert report["window"]["releases"] == everything["window"]["releases"], window
    csv_reply = client.get(
        f"{API}/reports/levels.csv", params={"from": "0001-01-01"}, headers=PLANNER
    )
    assert csv_reply.status_code == 200
    # A window before any data is still an empty answer, not an error.
    early = _get(client, group_by="ward", **{"from": "0001-01-01", "to": "2000-01-04"})
    assert early["window"]["releases"] == []


def test_period_boundaries_follow_vietnam_time() -> None:
    # 23:30 UTC on 31 March is already April in Đà Nẵng (UTC+7): the second quarter.
    period = releases.period_of(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), "quarter")
    assert period.key == "2026-Q2"
    assert period.start == datetime(2026, 3, 31, 17, 0, tzinfo=UTC)
    assert releases.period_of(period.start, "month").key == "2026-04"
    assert releases.period_of(datetime(2026, 1, 1, tzinfo=UTC), "week").key == "2026-W01"
    closed = releases.closed_periods(
        datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC), "quarter"
    )
    # Q2 ended at 17:00 UTC on 30 June; with the grace it is released from 17:10.
    assert [p.key for p in closed] == ["2026-Q1", "2026-Q2"]
