"""nangluc engine: IRT models, ability estimation, item selection, stopping, scoring.

Pure numpy/scipy: arrays in, arrays out, no I/O. The service (one test at a
time, :mod:`nangluc.engine.session`) and the simulator (thousands in lockstep,
:mod:`nangluc.engine.cat`) call the same functions.
"""

from nangluc.engine.bank import KINDS, MODELS, ItemBank
from nangluc.engine.cat import CatBatch, NoItemLeftError, advance, start
from nangluc.engine.config import CITIZEN_TEST, CONFIGS, TestConfig
from nangluc.engine.estimation import EAP, MAP, MLE, CorrelatedEAP, Estimator, estimate_areas
from nangluc.engine.scoring import LEVELS, Level, Scores, level_decided, level_of, score
from nangluc.engine.selection import (
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
from nangluc.engine.session import (
    AreaScore,
    OverallScore,
    TestResult,
    TestState,
    answer_item,
    score_test,
    start_test,
)
from nangluc.engine.stopping import (
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
