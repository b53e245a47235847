"""The whole loop a city will run once real responses come in, proved on simulated citizens.

Run: ``python -m benchmarks.data_loop [--citizens N] [--seed S] [--keep DIR]``
(default 2,000 citizens, about two minutes; the issue's figure is at 20,000).

1. A "true" bank that differs from the shipped provisional one: every slope
   multiplied by a log-normal factor (SD 0.25 in logs), every location moved
   by a normal shift (SD 0.3), seeded.
2. The service runs with the shipped bank active on a real database (a
   SQLite file by default, or ``--database-url postgresql://...``), driven by
   Litestar's async test client against the real app in this process. Simulated citizens (abilities equicorrelated normal, r = 0.7)
   take the citizen test through the HTTP API, answering each item from the
   true bank: ``POST /api/v1/sessions`` and one ``POST .../answers`` per item.
3. ``GET /api/v1/admin/responses.csv`` exports the responses; they are
   calibrated linked to the live scale (``nangluc calibrate`` defaults); the
   new bank is stored (``POST /admin/bank-files``) and activated through the
   go-live gate (``POST /admin/banks/{v}/activate``).
4. Prints the recovery of the parameters against the truth (RMSE of a and
   of the mean location b, over the items whose new estimates went live, and
   over all items of the new bank), and the citizen test's level accuracy
   *against the true bank* before and after activation: simulees answer from
   the true bank, the test runs on the live bank (shipped, then calibrated),
   and the level is compared with the true level under the true bank.

Goal (issue 15): RMSE of a and of b <= 0.15 at 20,000 citizens.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from nangluc.calibration import read_responses
from nangluc.calibration.run import calibrate_bank
from nangluc.engine import CITIZEN_TEST, irt
from nangluc.engine.bank import MODELS, ItemBank
from nangluc.items import bank_from_dict, load_bank
from nangluc.simulations.core import run, true_levels
from nangluc.simulations.population import draw_population

ADMIN_KEY = "data-loop-benchmark-key"
HEADERS = {"X-API-Key": ADMIN_KEY}
API = "/api/v1"


def true_bank(document, rng: np.random.Generator) -> ItemBank:
    """The shipped bank with every item's slope and locations moved at random."""
    bank = document.item_bank
    a = bank.discrimination * np.exp(rng.normal(0, 0.25, bank.n_items))
    shift = rng.normal(0, 0.3, bank.n_items)
    thresholds = []
    for i in range(bank.n_items):
        t = bank.thresholds[i]
        thresholds.append((t[np.isfinite(t)] + shift[i]).tolist())
    return ItemBank.from_items(
        version="truth",
        item_ids=bank.item_ids,
        areas=[bank.area_codes[k] for k in bank.area],
        models=[MODELS[m] for m in bank.model],
        discrimination=a,
        thresholds=thresholds,
        guessing=bank.guessing,
        kinds=[document.item(i).kind for i in bank.item_ids],
    )


def _option(record, score: int, rng: np.random.Generator) -> int:
    """The option a citizen picks to get ``score`` on ``record``."""
    if record.key is None:
        return int(score)
    if score == 1:
        return int(record.key)
    wrong = [k for k in range(len(record.options)) if k != record.key]
    return int(rng.choice(wrong))


async def collect(
    client, document, truth: ItemBank, theta: np.ndarray, seed: int, concurrency: int
) -> int:
    """Every simulated citizen takes the test through the API, ``concurrency`` at a time.

    Returns the number of answers sent. Each citizen draws from a generator
    of their own, so the data do not depend on the interleaving.
    """
    import asyncio

    index = {item_id: k for k, item_id in enumerate(truth.item_ids)}
    wards = ["Hải Châu", "Thanh Khê", "Sơn Trà", "Ngũ Hành Sơn", "Liên Chiểu", "Cẩm Lệ"]
    gate = asyncio.Semaphore(concurrency)

    async def citizen(person: int) -> int:
        rng = np.random.default_rng([seed, person])
        async with gate:
            started = await client.post(
                f"{API}/sessions", json={"ward": wards[person % len(wards)]}
            )
            started.raise_for_status()
            body = started.json()
            session, item, sent = body["session_id"], body["item"], 0
            while item is not None:
                k = index[item["id"]]
                theta_k = theta[person, truth.area[k]][None]
                score = int(irt.simulate_responses(truth, theta_k, np.array([k]), rng)[0])
                option = _option(document.item(item["id"]), score, rng)
                reply = await client.post(
                    f"{API}/sessions/{session}/answers",
                    json={"item_id": item["id"], "response": option},
                )
                reply.raise_for_status()
                sent += 1
                item = reply.json()["item"]
            return sent

    counts = await asyncio.gather(*(citizen(p) for p in range(theta.shape[0])))
    return int(sum(counts))


def accuracy_against_truth(live: ItemBank, truth: ItemBank, n: int, seed: int) -> dict:
    """The citizen test on ``live`` with simulees answering from ``truth``; levels from ``truth``."""
    rng = np.random.default_rng(seed)
    theta = draw_population(n, truth.n_areas, 0.7, rng)
    columns = np.arange(truth.n_items)
    recorded = np.stack(
        [
            irt.simulate_responses(truth, theta[:, truth.area[k]], np.full(n, k), rng)
            for k in columns
        ],
        axis=1,
    ).astype(np.int16)
    result = run(live, CITIZEN_TEST, theta, np.random.default_rng(seed + 1), recorded=recorded)
    right = result.level == true_levels(truth, theta)
    return {"level_accuracy": float(right.mean()), "mean_items": float(result.length.mean())}


def rmse(x, y) -> float:
    return float(np.sqrt(np.mean((np.asarray(x) - np.asarray(y)) ** 2)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--simulees", type=int, default=5000, help="for the accuracy figures")
    parser.add_argument(
        "--keep", type=Path, default=None, help="directory to keep the database and files in"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="service database, emptied first (default: a SQLite file in the work directory); "
        "e.g. createdb nangluc_loop, then postgresql://postgres@127.0.0.1/nangluc_loop",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="citizens answering at once")
    args = parser.parse_args(argv)

    import asyncio
    import logging

    from litestar.testing import AsyncTestClient

    from nangluc.service.app import create_app
    from nangluc.service.settings import Settings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    document = load_bank()
    rng = np.random.default_rng(args.seed)
    truth = true_bank(document, rng)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="nangluc-loop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = args.database_url
    if url is None:
        database = workdir / "service.db"
        database.unlink(missing_ok=True)
        url = f"sqlite:///{database}"
    settings = Settings(database_url=url).with_admin_keys(ADMIN_KEY)
    # the loop starts from an empty service: the shipped bank active, no answers
    import sqlalchemy as sa

    from nangluc.service.db import create_db_engine

    engine = create_db_engine(settings)
    with engine.begin() as conn:  # every table of the benchmark's database
        tables = sa.MetaData()
        tables.reflect(conn)
        tables.drop_all(conn)
    engine.dispose()
    app = create_app(settings)
    theta = draw_population(args.citizens, truth.n_areas, 0.7, rng)

    async def loop():
        async with AsyncTestClient(app) as client:
            started = time.perf_counter()
            answers = await collect(client, document, truth, theta, args.seed, args.concurrency)
            print(
                f"{args.citizens:,} citizens answered {answers:,} items through the HTTP API "
                f"(Litestar test client, {args.concurrency} at a time, database "
                f"{url.split(':')[0]}) in {time.perf_counter() - started:.0f} s"
            )
            csv_text = (await client.get(f"{API}/admin/responses.csv", headers=HEADERS)).text
            (workdir / "responses.csv").write_text(csv_text, encoding="utf-8")
            started = time.perf_counter()
            data = read_responses(io.StringIO(csv_text), bank=document)
            calibration = calibrate_bank(data, current=document)
            print(
                f"calibrated {data.n_responses:,} responses in {time.perf_counter() - started:.1f} s: "
                f"bank {calibration.document['version']} ({calibration.document['status']}), "
                f"{sum(r['decision'] == 'operational' for r in calibration.items)} new estimates live, "
                f"{sum(r['decision'] == 'kept' for r in calibration.items)} kept, "
                f"{len(calibration.errors)} error(s)"
            )
            (workdir / "calibrated.json").write_text(
                json.dumps(calibration.document, ensure_ascii=False), encoding="utf-8"
            )
            stored = await client.post(
                f"{API}/admin/bank-files", json=calibration.document, headers=HEADERS
            )
            stored.raise_for_status()
            version = calibration.document["version"]
            activated = await client.post(f"{API}/admin/banks/{version}/activate", headers=HEADERS)
            gate = activated.json().get("gate") or {}
            print(
                f"gate: {'passed' if gate.get('passed') else 'REFUSED'} "
                f"(candidate level accuracy {gate.get('candidate', {}).get('level_accuracy')}, "
                f"current {(gate.get('current') or {}).get('level_accuracy')}); "
                f"activation HTTP {activated.status_code}"
            )
            return calibration

    calibration = asyncio.run(loop())
    new = bank_from_dict(calibration.document)
    index = {item_id: k for k, item_id in enumerate(truth.item_ids)}

    def location(record):
        return float(np.mean(record.thresholds))

    true_b = {
        i: float(np.mean(truth.thresholds[k][np.isfinite(truth.thresholds[k])]))
        for i, k in index.items()
    }
    live_ids = [r["id"] for r in calibration.items if r["decision"] == "operational"]
    for label, ids in (
        ("new estimates live", live_ids),
        ("every item of the new bank", list(index)),
    ):
        if not ids:
            continue
        a_new = [new.item(i).a for i in ids]
        a_true = [truth.discrimination[index[i]] for i in ids]
        b_new = [location(new.item(i)) for i in ids]
        print(
            f"recovery over {label} ({len(ids)} items): RMSE a {rmse(a_new, a_true):.3f}, "
            f"RMSE b {rmse(b_new, [true_b[i] for i in ids]):.3f}"
        )
    shipped_ids = list(index)
    print(
        f"the shipped bank against the truth: RMSE a {rmse([document.item(i).a for i in shipped_ids], truth.discrimination):.3f}, "
        f"RMSE b {rmse([location(document.item(i)) for i in shipped_ids], [true_b[i] for i in shipped_ids]):.3f}"
    )
    before = accuracy_against_truth(document.item_bank, truth, args.simulees, args.seed)
    after = accuracy_against_truth(new.item_bank, truth, args.simulees, args.seed)
    print(
        f"citizen test against the true bank ({args.simulees:,} simulees): level accuracy "
        f"{before['level_accuracy']:.3f} with {before['mean_items']:.1f} items before activation, "
        f"{after['level_accuracy']:.3f} with {after['mean_items']:.1f} items after"
    )
    if live_ids:
        print(
            f"data loop at {args.citizens:,} citizens: RMSE a "
            f"{rmse([new.item(i).a for i in live_ids], [truth.discrimination[index[i]] for i in live_ids]):.3f}, "
            f"RMSE b {rmse([location(new.item(i)) for i in live_ids], [true_b[i] for i in live_ids]):.3f} "
            "over the new estimates that went live (goal <= 0.15 each at 20,000)"
        )


if __name__ == "__main__":
    main()
