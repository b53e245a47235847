"""Request and response bodies of the HTTP API (separate from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from nangluc.text import clean_label

Language = Literal["vi", "en"]
SessionStatus = Literal["in_progress", "finished"]
BankStatus = Literal["draft", "active", "retired"]
#: Age groups a planner reports by; a band, never a birth date.
AGE_GROUPS: tuple[str, ...] = ("under-15", "15-24", "25-34", "35-44", "45-54", "55-64", "65+")
AgeGroup = Literal["under-15", "15-24", "25-34", "35-44", "45-54", "55-64", "65+"]
#: A ward as typed: cleaned by :func:`nangluc.text.clean_label` (NFC, invisible
#: characters removed, spaces collapsed); control and bidirectional characters
#: and line separators are refused (PostgreSQL refuses NUL, and nothing a
#: planner groups by needs them), and so is a ward that is blank once cleaned.
Ward = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=100,
        # The pattern is published in the OpenAPI document (app._fix_openapi);
        # clean_label checks the same characters with clearer messages.
        description=(
            "Ward name (max 100 characters). Stored in Unicode NFC with invisible "
            "characters removed and spaces collapsed; control characters, bidirectional "
            "controls and line separators are refused, and so is a blank name."
        ),
    ),
]
ItemId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
#: A training cohort's code, from its link (``/?cohort=CODE&phase=before``).
CohortCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9A-Za-z]{4,16}$",
        description="A training cohort's code (letters and digits, from the cohort's link)",
    ),
]
CohortPhase = Literal["before", "after"]


class CohortTag(msgspec.Struct, forbid_unknown_fields=True):
    """A training class's link: its code and whether the test is taken before or after."""

    code: CohortCode
    phase: CohortPhase


CalibrationModel = Literal["auto", "2pl", "3pl", "grm", "gpcm", "1pl", "pcm"]
BankVersionId = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$")]


class ErrorBody(msgspec.Struct):
    """Every error reply: a clear message and the HTTP status code."""

    detail: str
    status_code: int


class Health(msgspec.Struct):
    status: str
    version: str


class Ready(msgspec.Struct):
    """The service can take tests: its database answers and its schema is current."""

    status: str
    database: str
    revision: str


#: A test's name (``GET /tests`` lists them), as test definitions write it.
TestName = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
        description="A test's name (GET /api/v1/tests lists the tests one may start)",
    ),
]
TestVersion = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,31}$")]


class StartSession(msgspec.Struct, forbid_unknown_fields=True):
    """Optional body of ``POST /sessions``: no name or ID number is taken.

    ``test`` names the test to take (its active version); without it, the
    city's default test. ``language`` defaults to Vietnamese (or the test's
    first language if it is not offered in Vietnamese).
    """

    language: Language | None = None
    ward: Ward | None = None
    age_group: AgeGroup | None = None
    cohort: CohortTag | None = None
    test: TestName | None = None

    def __post_init__(self) -> None:
        if self.ward is not None:
            self.ward = clean_label(self.ward, what="ward")


class Item(msgspec.Struct):
    """An item as clients see it: never its key or parameters."""

    id: str
    area: str
    competence: str | None
    kind: str
    text: str
    options: list[str]


Progress = Annotated[
    float,
    msgspec.Meta(
        ge=0.0,
        le=1.0,
        description="Estimated share of the test done (from a simulation of the test; "
        "null when unknown)",
    ),
]


class TestRef(msgspec.Struct):
    """The test a session runs: its name and the version it started with."""

    name: str
    version: str | None


class SessionOut(msgspec.Struct):
    session_id: uuid.UUID
    status: SessionStatus
    answered: int
    max_items: int
    language: Language
    item: Item | None
    progress: Progress | None = None
    test: TestRef | None = None


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    """An answer: the current item's id and the chosen option index (0-based)."""

    item_id: ItemId
    response: Annotated[int, msgspec.Meta(ge=0, description="The chosen option's index (0-based)")]


class AnswerOut(msgspec.Struct):
    session_id: uuid.UUID
    status: SessionStatus
    answered: int
    max_items: int
    item: Item | None
    progress: Progress | None = None
    test: TestRef | None = None


LevelCode = Annotated[
    int,
    msgspec.Meta(
        description="The level's code in the bank's framework (its levels, names and cut scores "
        "are in GET /api/v1/framework). The shipped Đà Nẵng framework: 1 Bắt đầu (Beginning), "
        "2 Cơ bản (Basic), 3 Khá (Intermediate), 4 Cao (High), 5 Nâng cao (Advanced)",
    ),
]
Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Score = Annotated[float, msgspec.Meta(ge=0.0, le=100.0, description="Points on the 0–100 scale")]


class LevelProbabilityOut(msgspec.Struct):
    level: LevelCode
    probability: Probability


class OverallOut(msgspec.Struct):
    """The overall score (the framework's overall rule: the mean of the area scores, or their
    weighted mean) and what it says about the level."""

    score: Annotated[Score, msgspec.Meta(description="Point estimate on the 0–100 scale")]
    se: Annotated[
        float, msgspec.Meta(description="Posterior root-mean-square error of the score, in points")
    ]
    interval: Annotated[
        list[float],
        msgspec.Meta(description="95% posterior interval [low, high] of the true score"),
    ]
    level: LevelCode
    level_name: str
    probability: Annotated[
        Probability, msgspec.Meta(description="Posterior probability that `level` is right")
    ]
    level_probabilities: Annotated[
        list[LevelProbabilityOut],
        msgspec.Meta(
            description="Posterior probability of each level of the framework, in its order; "
            "sums to 1"
        ),
    ]
    settled: Annotated[
        bool,
        msgspec.Meta(
            description="The test's own level rule is met (the citizen test: probability ≥ 0.9); "
            "false means the result is uncertain, e.g. the test ended at its maximum length"
        ),
    ]


class AreaOut(msgspec.Struct):
    """An area's score and level, as in :class:`OverallOut`."""

    area: str
    name: str
    score: Score
    se: float
    interval: list[float]
    level: LevelCode
    level_name: str
    probability: Probability
    level_probabilities: list[LevelProbabilityOut]
    settled: bool
    answered: Annotated[int, msgspec.Meta(description="Scored questions of this area answered")]


class Text(msgspec.Struct):
    vi: str
    en: str


class BasicSkillOut(msgspec.Struct):
    code: str
    name: Text


class NextStepOut(msgspec.Struct):
    """A criterion to learn next: one the citizen most likely does not meet yet but is close to."""

    criterion: Annotated[str, msgspec.Meta(description="The criterion's (item's) id")]
    competence: str | None
    competence_name: Text
    goal: Annotated[Text, msgspec.Meta(description="The criterion as a learning goal")]
    basic_skills: Annotated[
        list[BasicSkillOut],
        msgspec.Meta(description="The basic skills (of the five a city teaches) it belongs to"),
    ]
    success: Annotated[
        Probability,
        msgspec.Meta(description="Posterior probability that the citizen meets it now (< 0.5)"),
    ]


class AreaAdviceOut(msgspec.Struct):
    area: str
    name: Text
    level: LevelCode
    top: Annotated[bool, msgspec.Meta(description="At the top level: no next steps")]
    note: Text | None
    gain: Annotated[
        float, msgspec.Meta(description="Points the area's score would gain if the steps were met")
    ]
    steps: list[NextStepOut]


class AdviceOut(msgspec.Struct):
    """What to learn next, from where learning helps most (areas in that order)."""

    top_overall: Annotated[
        bool,
        msgspec.Meta(
            description="The overall level is the framework's top level (Đà Nẵng: 5, Nâng cao)"
        ),
    ]
    message: Text
    more: Text | None
    help: Text
    areas: list[AreaAdviceOut]


class ResultOut(msgspec.Struct):
    session_id: uuid.UUID
    overall: OverallOut
    areas: list[AreaOut]
    answered: int
    stop_reason: Annotated[
        str | None,
        msgspec.Meta(
            description="Why the test ended: level_probable (the level reached its probability "
            "threshold), max_items (the maximum length), no_item_left, …"
        ),
    ]
    settled_by: Annotated[
        list[dict[str, Any]],
        msgspec.Meta(description="The rule(s) that settle a level, e.g. LevelProbability 0.9"),
    ]
    advice: AdviceOut
    test: Annotated[
        TestRef | None,
        msgspec.Meta(description="The test taken: its name and version (null for old sessions)"),
    ] = None


class PatternAnswer(msgspec.Struct, forbid_unknown_fields=True):
    """One answer of a response pattern: an item and the chosen option."""

    item: ItemId
    response: Annotated[
        int,
        msgspec.Meta(
            description="The chosen option's index (0-based), as in answers; "
            "a graded item's category"
        ),
    ]


class ScoreIn(msgspec.Struct, forbid_unknown_fields=True):
    """A complete or partial response pattern to score (nothing of it is stored).

    ``test`` names the test whose rules score it (the city's default test
    without it); ``test_version`` a version of it that has been live (its
    active one without it).
    """

    responses: Annotated[
        list[PatternAnswer],
        msgspec.Meta(
            max_length=1000,
            description="Each item at most once, in any order; items not given count as not asked",
        ),
    ]
    test: TestName | None = None
    test_version: TestVersion | None = None
    bank: (
        Annotated[
            str,
            msgspec.Meta(
                pattern=r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$",
                description="A live bank version (active or retired); the test's bank by default",
            ),
        ]
        | None
    ) = None
    language: Language = "vi"


class ScoreOut(msgspec.Struct):
    """A scored pattern: the same result as a finished session's, without a session."""

    bank_version: str
    test: Annotated[TestRef, msgspec.Meta(description="The test whose rules scored the pattern")]
    overall: OverallOut
    areas: list[AreaOut]
    answered: int
    stop_reason: Annotated[str | None, msgspec.Meta(description="scored")]
    settled_by: list[dict[str, Any]]
    advice: AdviceOut


class FrameworkArea(msgspec.Struct):
    code: str
    name: Text


class FrameworkCompetence(msgspec.Struct):
    code: str
    area: str
    name: Text


class FrameworkLevel(msgspec.Struct):
    level: LevelCode
    name: Text
    lower: float
    upper: float
    description: Text | None = None


class FrameworkOverall(msgspec.Struct):
    """How the area scores make the overall score."""

    rule: Annotated[
        Literal["mean", "weighted"],
        msgspec.Meta(description="mean: the plain mean of the areas; weighted: a weighted mean"),
    ]
    weights: Annotated[
        dict[str, float] | None,
        msgspec.Meta(description="Each area's weight (rule weighted), by area code"),
    ] = None


class FrameworkOut(msgspec.Struct):
    """The active bank's framework: its areas, competences, levels (in increasing order, with
    their cut scores on the 0–100 scale) and overall rule."""

    bank_version: str
    areas: list[FrameworkArea]
    competences: list[FrameworkCompetence]
    levels: list[FrameworkLevel]
    age_groups: list[str]
    overall: FrameworkOverall | None = None
    name: Text | None = None
    basic_skills: Annotated[
        list[FrameworkArea],
        msgspec.Meta(description="The basic skills a city teaches (code and name), if any"),
    ] = []


class Interval(msgspec.Struct):
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float


class LevelShare(msgspec.Struct):
    """The estimated share of a group whose true score is at one level (its code in the
    active bank's framework), with its 95% interval."""

    level: int
    name: str
    value: float
    low: float
    high: float


class AtLeast(msgspec.Struct):
    """The share at or above ``level`` (a level code of the active bank's framework)."""

    level: int
    value: float
    low: float
    high: float


class GroupFigures(msgspec.Struct):
    """A group's figures. ``tests`` is the released (noisy) number of tests; when ``shown``
    is false (``withheld``: ``few_tests``, ``too_noisy`` or ``no_tests``) the group has no shares."""

    tests: Interval
    shown: bool
    withheld: str | None
    levels: list[LevelShare]
    at_least: AtLeast | None
    mean: Interval | None


class LevelChange(msgspec.Struct):
    level: int
    value: float
    low: float
    high: float


class Change(msgspec.Struct):
    """After minus before, with 95% intervals (both groups shown, else ``shown`` is false)."""

    shown: bool
    levels: list[LevelChange]
    at_least: AtLeast | None
    mean: Interval | None


class ReportGroup(msgspec.Struct, kw_only=True):
    """One group: a ward, an age group, both, the whole city, or a cohort (before/after/change)."""

    key: str
    label: str
    ward: str | None = None
    age_group: str | None = None
    cohort: str | None = None
    tests: Interval | None = None
    shown: bool | None = None
    withheld: str | None = None
    levels: list[LevelShare] = []
    at_least: AtLeast | None = None
    mean: Interval | None = None
    before: GroupFigures | None = None
    after: GroupFigures | None = None
    change: Change | None = None


class LevelBand(msgspec.Struct):
    level: int
    name: str
    lower: float
    upper: float


class ReportFramework(msgspec.Struct):
    """The framework a report covers: the active bank's. Only tests taken on banks of this
    framework (same areas, levels and overall rule) are counted; tests of other frameworks
    are never mixed into its distributions."""

    bank_version: Annotated[str, msgspec.Meta(description="The active bank version")]
    name: str | None
    bank_versions: Annotated[
        list[str],
        msgspec.Meta(description="Bank versions of this framework whose tests may be counted"),
    ]


class ReportMeasure(msgspec.Struct):
    kind: Literal["overall", "area", "competence"]
    code: str | None
    name: str


class ReportWindow(msgspec.Struct):
    from_: str | None = msgspec.field(name="from")
    to: str | None = None
    releases: list[str] = []
    covers: dict[str, str] | None = None


class ReportPrivacy(msgspec.Struct):
    epsilon: float
    unit: str
    protects: str


class LevelReport(msgspec.Struct):
    """Level shares of true scores by group, from differentially private releases."""

    group_by: str
    measure: ReportMeasure
    at_least: int | None
    window: ReportWindow
    privacy: ReportPrivacy
    framework: ReportFramework
    levels: Annotated[
        list[LevelBand], msgspec.Meta(description="The levels of the report's framework")
    ]
    min_group: int
    notes: list[str]
    groups: list[ReportGroup]


class ReleaseOut(msgspec.Struct):
    key: str
    kind: str
    start: datetime
    end: datetime
    created: datetime
    epsilon: float


class CohortIn(msgspec.Struct, forbid_unknown_fields=True):
    """A training class: a name planners recognise, and how many days its links count."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None


class CohortLinks(msgspec.Struct):
    before: str
    after: str


class CohortOut(msgspec.Struct):
    code: str
    name: str
    created: datetime
    closes: datetime
    released_after: datetime
    status: Literal["open", "closed", "released"]
    links: CohortLinks


class WardUnit(msgspec.Struct):
    code: str
    kind: str
    name: str
    name_en: str


class WardListOut(msgspec.Struct):
    """The city's wards and communes (the list reports group by)."""

    region: dict[str, str]
    as_of: str
    source: str
    units: list[WardUnit]


class UnmatchedWard(msgspec.Struct):
    key: str
    example: str
    tests: int


class WardAliasIn(msgspec.Struct, forbid_unknown_fields=True):
    """Count tests that gave ``text`` (matched by its key) in unit ``code`` from now on."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class WardAliasOut(msgspec.Struct):
    key: str
    code: str
    example: str


class BankOut(msgspec.Struct):
    version: str
    parent: str | None
    status: BankStatus
    document_status: str | None
    items: int
    created: datetime
    activated: datetime | None


class CalibrationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Calibrate on the stored responses; the result is a new draft bank version.

    ``prior``: item priors (``default``) or plain maximum likelihood
    (``none``); ``min_responses``: fewest responses for a new estimate to go
    live (as ``nangluc calibrate``).
    """

    model: CalibrationModel = "auto"
    base_version: BankVersionId | None = None
    version: BankVersionId | None = None
    prior: Literal["default", "none"] = "default"
    min_responses: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 200


class ActivationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Put a version live. ``force`` overrides a refusal of the go-live gate and needs a ``reason``."""

    force: bool = False
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None


class ActivationOut(msgspec.Struct):
    """The activated version, the go-live gate's result, and whether it was forced."""

    version: str
    parent: str | None
    status: BankStatus
    document_status: str | None
    items: int
    created: datetime
    activated: datetime | None
    gate: dict[str, Any] | None
    forced: bool
    reason: str | None


class ActivationLogOut(msgspec.Struct):
    """One entry of the audit log of bank activations."""

    id: int
    at: datetime
    actor: str
    kind: str
    version: str
    previous: str | None
    outcome: Literal["activated", "refused"]
    forced: bool
    reason: str | None
    gate: dict[str, Any] | None


class CalibrationOut(msgspec.Struct):
    bank: BankOut
    respondents: int
    responses: int
    model: str
    summary: dict[str, Any]


class TestOut(msgspec.Struct):
    """A test one may start (``POST /sessions {"test": name}``), in the asked language."""

    name: str
    version: str
    default: Annotated[bool, msgspec.Meta(description="The city's default test")]
    kind: Annotated[
        Literal["adaptive", "form"],
        msgspec.Meta(description="adaptive, or a fixed form (the same items in the same order)"),
    ]
    title: str
    description: str | None
    intended_use: str
    languages: list[str]
    areas: Annotated[
        list[str] | None, msgspec.Meta(description="Area codes in scope (null: every area)")
    ]
    bank_version: str | None
    min_items: int
    max_items: int
    mean_items: Annotated[
        float | None,
        msgspec.Meta(description="Mean length in the go-live simulation (null if not simulated)"),
    ]


class TestDefinitionOut(msgspec.Struct):
    """A stored test definition version and where it is in its lifecycle."""

    name: str
    version: str
    status: BankStatus
    kind: Literal["adaptive", "form"]
    title: dict[str, str]
    bank: str
    areas: list[str] | None
    languages: list[str]
    min_items: int
    max_items: int
    simulated: dict[str, Any] | None
    created: datetime
    activated: datetime | None
    default: bool = False


class TestActivationIn(msgspec.Struct, forbid_unknown_fields=True):
    """Put a test version live (through the go-live gate); ``default`` makes it the city's default.

    ``force`` overrides a refusal of the gate and needs a ``reason``.
    """

    default: bool = False
    force: bool = False
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None


class TestActivationOut(TestDefinitionOut):
    """The activated version, the gate's simulated figures, and whether it was forced."""

    gate: dict[str, Any] | None = None
    forced: bool = False
    reason: str | None = None
