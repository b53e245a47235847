"""The go-live gate: what must hold before a bank version (or a test) reaches citizens.

:func:`go_live_gate` compares a candidate *deployment* (a bank version and the
rules of the test that will run on it) with the current one. It passes only
when

1. the candidate bank has no error-level diagnostics (its status is not
   ``draft`` and ``metadata.calibration.diagnostics`` lists no error), and
2. a simulation of the test on the candidate keeps the overall level
   accuracy within :attr:`GatePolicy.tolerance` of the same simulation on the
   current deployment, and
3. both banks have the same framework levels and overall rule
   (:attr:`ItemBank.scale`): accuracies over other levels are not comparable,
   so a change of framework passes only when forced, with a reason.

The simulation: ``simulees`` true abilities drawn once (equicorrelated normal,
mean 0, SD 1, inter-area correlation ``correlation``), the same for both
deployments, each answering from its own bank's parameters
(:func:`nangluc.simulations.core.run`), with the same seed. So both
accuracies are what each deployment promises about itself, measured on the
same people; the comparison is paired. With the default 3,000 simulees and
the citizen test the standard error of the difference is about 0.006 (it is
reported), so the default tolerance of 0.02 refuses a real loss of two
points while a candidate as good as the current one passes with
probability above 99%.

What the simulation cannot see: each deployment is scored against its own
bank, so a candidate whose parameters change the score scale itself (for
example every slope much lower, which squeezes the domain scores towards the
middle) can even look more accurate. Such changes show in the calibration's
diagnostics and drift table; the simulation guards against a candidate that
measures less (items lost to pretest, a thinner area, a shorter test).

The same function serves bank activation (API and CLI) and, later, test
definitions: pass the candidate's own rules as ``candidate.config``. It is
pure (no I/O): callers record its :meth:`GateResult.to_dict` in their audit
log. Takes about a second per 3,000 simulees and deployment on one core, so
the service runs it inside the activation request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nangluc.engine.bank import ItemBank
    from nangluc.engine.config import TestConfig
    from nangluc.items import BankDocument


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is.

    Parameters
    ----------
    tolerance : float
        Largest drop of simulated overall level accuracy (a proportion,
        0.02 = two points) the candidate may show against the current
        deployment.
    simulees : int
        Simulated citizens per deployment.
    correlation : float
        Inter-area correlation of their true abilities (DESIGN §3's 0.7).
    seed : int
        Seed of the simulation (the same for both deployments).
    """

    tolerance: float = 0.02
    simulees: int = 3000
    correlation: float = 0.7
    seed: int = 20241018

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < 1:
            raise ValueError(f"tolerance must lie in [0, 1), got {self.tolerance!r}")
        if isinstance(self.simulees, bool) or not isinstance(self.simulees, int):
            raise TypeError("simulees must be an integer")
        if not 100 <= self.simulees <= 1_000_000:
            raise ValueError(f"simulees must lie in 100..1,000,000, got {self.simulees}")
        if not 0 <= self.correlation <= 1:
            raise ValueError(f"correlation must lie in [0, 1], got {self.correlation!r}")


@dataclass(frozen=True)
class Deployment:
    """What runs for citizens: a bank version and the rules of the test on it.

    ``view`` is the bank the test runs on when it is not the whole bank (a
    test definition's areas in scope, :meth:`nangluc.engine.TestDefinition.build`).
    """

    bank: BankDocument
    config: TestConfig
    view: ItemBank | None = None

    @property
    def item_bank(self) -> ItemBank:
        return self.view if self.view is not None else self.bank.item_bank


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict and the evidence for it (JSON-ready through :meth:`to_dict`).

    ``current`` and ``candidate`` hold, per deployment, the bank version,
    the test's name and the simulated ``level_accuracy``, ``mean_items``,
    ``max_items`` and ``rmse`` (overall score). ``reasons`` says why the
    gate refused (empty when it passed).
    """

    passed: bool
    reasons: tuple[str, ...]
    errors: tuple[dict[str, Any], ...]
    candidate: dict[str, Any]
    current: dict[str, Any] | None
    difference: float | None
    difference_se: float | None
    policy: GatePolicy
    seconds: float
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "errors": list(self.errors),
            "candidate": self.candidate,
            "current": self.current,
            "accuracy_difference": self.difference,
            "accuracy_difference_se": self.difference_se,
            "tolerance": self.policy.tolerance,
            "simulees": self.policy.simulees,
            "correlation": self.policy.correlation,
            "seed": self.policy.seed,
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One paragraph for people: the verdict, the figures, the reasons."""
        c = self.candidate
        lines = [
            f"gate {'PASSED' if self.passed else 'REFUSED'}: candidate {c['bank']} "
            f"({c['test']}): level accuracy {c['level_accuracy']:.3f}, "
            f"{c['mean_items']:.1f} items on average (max {c['max_items']})"
        ]
        if self.current is not None:
            k = self.current
            lines.append(
                f"current {k['bank']} ({k['test']}): level accuracy {k['level_accuracy']:.3f}, "
                f"{k['mean_items']:.1f} items on average (max {k['max_items']}); difference "
                f"{self.difference:+.3f} (SE {self.difference_se:.3f}, tolerance "
                f"-{self.policy.tolerance:.3f}; {self.policy.simulees:,} simulees)"
            )
        lines += [f"refused: {reason}" for reason in self.reasons]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def error_diagnostics(bank: BankDocument) -> list[dict[str, Any]]:
    """Error-level findings recorded in a bank document (its calibration's, and a draft status)."""
    calibration = bank.metadata.get("calibration") if isinstance(bank.metadata, dict) else None
    found = []
    if isinstance(calibration, dict):
        for d in calibration.get("diagnostics") or ():
            if isinstance(d, dict) and d.get("severity") == "error":
                found.append(
                    {
                        "item_id": d.get("item_id"),
                        "code": d.get("code"),
                        "message": d.get("message"),
                    }
                )
    if bank.status == "draft" and not found:
        found.append(
            {
                "item_id": None,
                "code": "draft",
                "message": "the bank's status is draft: it has not been cleared for use",
            }
        )
    return found


def _simulate(deployment: Deployment, theta: np.ndarray, seed: int) -> tuple[dict, np.ndarray]:
    from nangluc.simulations.core import run

    bank = deployment.item_bank
    result = run(bank, deployment.config, theta, np.random.default_rng(seed))
    summary = result.summary
    figures = {
        "bank": deployment.bank.version,
        "test": deployment.config.name,
        "level_accuracy": float(summary["level_accuracy"]),
        "mean_items": float(summary["mean_items"]),
        "max_items": int(result.length.max()),
        "rmse": float(summary["rmse"]),
        "operational_items": int(bank.operational.sum()),
    }
    return figures, result.level == result.true_level


def go_live_gate(
    candidate: Deployment,
    current: Deployment | None,
    policy: GatePolicy | None = None,
) -> GateResult:
    """Decide whether ``candidate`` may replace ``current`` for citizens.

    Parameters
    ----------
    candidate : Deployment
        The bank version (and the test's rules) to put live.
    current : Deployment or None
        What runs now (None when nothing is live yet: only the diagnostics
        and the candidate's own simulation count).
    policy : GatePolicy, optional

    Returns
    -------
    GateResult
    """
    policy = policy or GatePolicy()
    started = time.perf_counter()
    reasons: list[str] = []
    notes: list[str] = []
    errors = error_diagnostics(candidate.bank)
    if errors:
        shown = "; ".join(
            (f"item {e['item_id']}: " if e["item_id"] else "") + str(e["message"])
            for e in errors[:5]
        )
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        reasons.append(f"{len(errors)} error-level diagnostic(s): {shown}{more}")
    from nangluc.simulations.population import draw_population

    n_areas = candidate.item_bank.n_areas
    theta = draw_population(
        policy.simulees, n_areas, policy.correlation, np.random.default_rng(policy.seed)
    )
    candidate_figures, candidate_right = _simulate(candidate, theta, policy.seed + 1)
    current_figures = None
    difference = difference_se = None
    if current is not None:
        if current.item_bank.scale != candidate.item_bank.scale:
            # A level accuracy is the share told their right level: with other
            # levels (or another overall rule) it measures something else.
            reasons.append(
                "the candidate's framework has other levels or another overall rule "
                f"({_scale_text(current.item_bank.scale)} -> "
                f"{_scale_text(candidate.item_bank.scale)}): the simulated level accuracies "
                "are not comparable, and citizens would be told levels of another framework; "
                "a framework change needs force and a reason"
            )
        if current.item_bank.area_codes != candidate.item_bank.area_codes:
            notes.append(
                "the two banks have different areas "
                f"({', '.join(current.item_bank.area_codes)} -> "
                f"{', '.join(candidate.item_bank.area_codes)}): simulated on different abilities"
            )
            current_theta = draw_population(
                policy.simulees,
                current.item_bank.n_areas,
                policy.correlation,
                np.random.default_rng(policy.seed),
            )
        else:
            current_theta = theta
        current_figures, current_right = _simulate(current, current_theta, policy.seed + 1)
        gap = candidate_right.astype(float) - current_right.astype(float)
        difference = float(gap.mean())
        difference_se = float(gap.std(ddof=1) / np.sqrt(gap.size)) if gap.size > 1 else 0.0
        if difference < -policy.tolerance:
            reasons.append(
                f"simulated level accuracy drops from {current_figures['level_accuracy']:.3f} to "
                f"{candidate_figures['level_accuracy']:.3f} ({difference:+.3f}, more than the "
                f"tolerance of {policy.tolerance:.3f})"
            )
    return GateResult(
        passed=not reasons,
        reasons=tuple(reasons),
        errors=tuple(errors),
        candidate=candidate_figures,
        current=current_figures,
        difference=difference,
        difference_se=difference_se,
        policy=policy,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


def _scale_text(scale) -> str:
    cuts = "/".join(f"{level.lower:g}" for level in scale.levels)
    return f"{scale.n_levels} levels from {cuts}, overall {scale.rule}"


__all__ = ["Deployment", "GatePolicy", "GateResult", "error_diagnostics", "go_live_gate"]
