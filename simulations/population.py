"""Simulated test takers: true abilities per area.

Either drawn from a multivariate normal with one inter-area correlation
(DESIGN §3: mean 0, SD 1, correlation 0.7 by default) or read from a CSV of
abilities, one row per simulee.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Default inter-area correlation of the simulated population (DESIGN §3).
DEFAULT_CORRELATION = 0.7


def draw_population(
    n: int,
    n_areas: int,
    correlation: float,
    rng: np.random.Generator,
    *,
    mean: float = 0.0,
    sd: float = 1.0,
) -> np.ndarray:
    """Draw true area abilities from an equicorrelated multivariate normal.

    A one-factor construction, ``theta_a = mean + sd (sqrt(r) g + sqrt(1 - r) e_a)``
    with independent standard normal ``g`` and ``e_a``, gives every area SD
    ``sd`` and every pair of areas correlation ``r`` exactly (also ``r = 1``,
    where a covariance factorisation would be singular).

    Parameters
    ----------
    n : int
        Number of simulees (>= 1).
    n_areas : int
        Number of areas of the bank (>= 1).
    correlation : float
        Inter-area correlation in [0, 1]; ignored when ``n_areas`` is 1.
    rng : numpy.random.Generator
        Source of randomness.
    mean, sd : float
        Mean and standard deviation of every area's theta.

    Returns
    -------
    ndarray, shape (n, n_areas)
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"number of simulees must be an integer >= 1, got {n!r}")
    if isinstance(n_areas, bool) or not isinstance(n_areas, int | np.integer) or n_areas < 1:
        raise ValueError(f"number of areas must be an integer >= 1, got {n_areas!r}")
    if not (isinstance(correlation, int | float) and 0.0 <= correlation <= 1.0):
        raise ValueError(f"correlation must be a number in [0, 1], got {correlation!r}")
    if not math.isfinite(mean):
        raise ValueError(f"mean must be finite, got {mean}")
    if not (math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd must be a finite number > 0, got {sd}")
    general = rng.standard_normal((int(n), 1))
    specific = rng.standard_normal((int(n), int(n_areas)))
    z = math.sqrt(correlation) * general + math.sqrt(1.0 - correlation) * specific
    return mean + sd * z


def read_population(path: str | Path, area_codes: Sequence[str]) -> np.ndarray:
    """Read true abilities from a CSV file, one row per simulee.

    The columns are either the bank's area codes (``1,2,3,4,5``) or
    ``theta_1 .. theta_A`` in the bank's area order. Other columns (an id,
    a ward) are ignored.

    Parameters
    ----------
    path : str or Path
        UTF-8 CSV with a header row.
    area_codes : sequence of str
        The bank's areas in order.

    Returns
    -------
    ndarray, shape (n, n_areas)

    Raises
    ------
    ValueError
        The file is missing, has no usable columns, no rows, or a value that
        is not a finite number (the message names row and column).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"population file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"cannot read population file {path}: {error}") from None
    if not header:
        raise ValueError(f"population file {path} is empty")
    header = [h.strip() for h in header]
    by_code = [str(code) for code in area_codes]
    by_name = [f"theta_{a + 1}" for a in range(len(area_codes))]
    if all(c in header for c in by_code):
        columns = by_code
    elif all(c in header for c in by_name):
        columns = by_name
    else:
        raise ValueError(
            f"population file {path} needs one column per area: either {', '.join(by_code)} "
            f"or {', '.join(by_name)}; found {', '.join(header) or 'no columns'}"
        )
    index = [header.index(c) for c in columns]
    values = np.empty((len(rows), len(columns)))
    n = 0
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines carry no simulee
        if len(row) < len(header):
            raise ValueError(f"{path}, line {line}: expected {len(header)} fields, got {len(row)}")
        for j, (column, i) in enumerate(zip(columns, index, strict=True)):
            try:
                value = float(row[i])
            except ValueError:
                raise ValueError(
                    f"{path}, line {line}, column {column}: {row[i]!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise ValueError(f"{path}, line {line}, column {column}: theta must be finite")
            values[n, j] = value
        n += 1
    if n == 0:
        raise ValueError(f"population file {path} has no rows")
    return values[:n]
