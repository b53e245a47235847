"""nangluc engine: IRT models, ability estimation, item selection, stopping, scoring.

Pure numpy/scipy: arrays in, arrays out, no I/O. The service (one test at a
time, :mod:`engine.session`) and the simulator (thousands in lockstep,
:mod:`engine.cat`) call the same functions.
"""

from engine.bank import KINDS, MODELS, ItemBank
from engine.cat import CatBatch, NoItemLeftError, advance, start
from engine.config import CITIZEN_TEST, CONFIGS, TestConfig
from engine.estimation import EAP, MAP, MLE, CorrelatedEAP, Estimator, estimate_areas
from engine.scoring import LEVELS, Level, Scores, level_decided, level_of, score
from engine.selection import (
    AreaBalance,
    AreaMinimum,
    ContentRule,
    ExposureControl,
    KindBalance,
    MaximumInformation,
    OverallPrecision,
    PosteriorWeightedInformation,
    Randomesque,
    Selector,
    SympsonHetter,
    update_sympson_hetter,
)
from engine.session import (
    AreaScore,
    OverallScore,
    TestResult,
    TestState,
    answer_item,
    score_test,
    start_test,
)
from engine.stopping import (
    AreaStandardError,
    LevelDecided,
    LevelProbability,
    OverallStandardError,
    StopRule,
    ThetaStandardError,
)

__all__ = [
    "CITIZEN_TEST",
    "CONFIGS",
    "EAP",
    "KINDS",
    "LEVELS",
    "MAP",
    "MLE",
    "MODELS",
    "AreaBalance",
    "AreaMinimum",
    "AreaScore",
    "AreaStandardError",
    "CorrelatedEAP",
    "estimate_areas",
    "CatBatch",
    "ContentRule",
    "Estimator",
    "ExposureControl",
    "ItemBank",
    "KindBalance",
    "Level",
    "LevelDecided",
    "LevelProbability",
    "MaximumInformation",
    "NoItemLeftError",
    "OverallPrecision",
    "OverallScore",
    "OverallStandardError",
    "PosteriorWeightedInformation",
    "Randomesque",
    "Scores",
    "Selector",
    "StopRule",
    "SympsonHetter",
    "TestConfig",
    "TestResult",
    "TestState",
    "ThetaStandardError",
    "advance",
    "answer_item",
    "level_decided",
    "level_of",
    "score",
    "score_test",
    "start",
    "start_test",
    "update_sympson_hetter",
]
