"""Calibration: item parameters from response data, linked to the live scale.

``read_responses`` reads the long response CSV (DESIGN §3); ``calibrate_bank``
fits 2PL / 3PL / graded items by marginal maximum likelihood or, with item
priors (the default), marginal maximum a posteriori (EM over a quadrature
grid, each area its own scale), links them to the current bank through
anchor items, diagnoses the items and returns a new bank document;
``online_calibrate`` calibrates pretest items with the operational items
fixed. ``nangluc calibrate`` (``nangluc.calibration.cli``) is the command line.
"""

from nangluc.calibration.data import ResponseData, ResponseDataError, read_responses
from nangluc.calibration.diagnostics import Diagnostic
from nangluc.calibration.linking import Linking
from nangluc.calibration.priors import DEFAULT_PRIORS, Priors
from nangluc.calibration.run import (
    DEFAULT_MIN_RESPONSES,
    CalibrationRun,
    FitInfo,
    calibrate_bank,
    online_calibrate,
)

__all__ = [
    "DEFAULT_MIN_RESPONSES",
    "DEFAULT_PRIORS",
    "CalibrationRun",
    "Diagnostic",
    "FitInfo",
    "Linking",
    "Priors",
    "ResponseData",
    "ResponseDataError",
    "calibrate_bank",
    "online_calibrate",
    "read_responses",
]
