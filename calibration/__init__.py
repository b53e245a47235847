"""Calibration: item parameters from response data, linked to the live scale.

``read_responses`` reads the long response CSV (DESIGN §3); ``calibrate_bank``
fits 2PL / 3PL / graded items by marginal maximum likelihood (EM over a
quadrature grid, each area its own scale), links them to the current bank
through anchor items, diagnoses the items and returns a new bank document;
``online_calibrate`` calibrates pretest items with the operational items
fixed. ``nangluc calibrate`` (``nangluc.calibration.cli``) is the command line.
"""

from nangluc.calibration.data import ResponseData, ResponseDataError, read_responses
from nangluc.calibration.diagnostics import Diagnostic
from nangluc.calibration.linking import Linking
from nangluc.calibration.run import CalibrationRun, FitInfo, calibrate_bank, online_calibrate

__all__ = [
    "CalibrationRun",
    "Diagnostic",
    "FitInfo",
    "Linking",
    "ResponseData",
    "ResponseDataError",
    "calibrate_bank",
    "online_calibrate",
    "read_responses",
]
