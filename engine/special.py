"""The few scipy.special functions the engine uses, imported on first call.

Importing :mod:`scipy.special` takes about 0.25 s, more than everything else
``import nangluc.engine`` does; an app that embeds the engine should not pay it
at start-up. Each wrapper binds the ufunc on its first call.
"""

from __future__ import annotations

from typing import Any

_ufuncs: Any = None


def _special() -> Any:
    global _ufuncs
    if _ufuncs is None:
        import scipy.special

        _ufuncs = scipy.special
    return _ufuncs


def expit(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise (:func:`scipy.special.expit`)."""
    return _special().expit(x)


def ndtr(x: Any) -> Any:
    """Standard normal CDF, elementwise (:func:`scipy.special.ndtr`)."""
    return _special().ndtr(x)


def ndtri(p: Any) -> Any:
    """Standard normal quantile, elementwise (:func:`scipy.special.ndtri`)."""
    return _special().ndtri(p)
