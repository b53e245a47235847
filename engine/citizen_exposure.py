"""Sympson–Hetter control parameters of the citizen test (data, derived by simulation).

Derived for the shipped bank 2024.10-p1 (2024.10-p2 and -p3 have the same
items and parameters; they changed a level's English name and added learning
goals and basic skills) with
``python -m benchmarks.exposure_choice --write`` (target maximum exposure 0.6,
10,000 simulees of DESIGN's population, 12 iterations); items not listed have
control 1. They follow the items by id, so they carry over to a recalibrated
bank with the same items; rerun the benchmark with ``--bank`` after a
recalibration that changes the items' information.
"""

TARGET = 0.6
BANK_VERSION = "2024.10-p3"

#: (item id, control parameter k: the probability the item is given when selected)
CONTROL: tuple[tuple[str, float], ...] = (
    ("1.1.08", 0.769),
    ("1.3.06", 0.81),
    ("1.3.08", 0.817),
    ("2.2.06", 0.861),
    ("2.4.06", 0.624),
    ("3.1.07", 0.594),
    ("3.2.06", 0.839),
    ("3.2.08", 0.961),
    ("4.2.07", 0.671),
    ("4.2.09", 0.592),
    ("5.1.10", 0.881),
    ("5.3.09", 0.744),
    ("5.4.05", 0.792),
)
