"""Exceptions raised by the pure quant core.

Every error is a :class:`QuantError`, itself a :class:`ValueError`, so callers that do not care
about the detail can catch ``ValueError``; the service maps the tree to HTTP 422/409.

::

    QuantError(ValueError)
    ├── InvalidInput          an argument is outside its domain (negative strike, NaN, bad shape)
    ├── ImpliedVolNotFound    a price violates the no-arbitrage bounds or has no vol information
    └── NoConvergence         an iterative solver did not reach its tolerance
"""

from __future__ import annotations

__all__ = ["ImpliedVolNotFound", "InvalidInput", "NoConvergence", "QuantError"]


class QuantError(ValueError):
    """Base class of every error raised by :mod:`app.quant`."""


class InvalidInput(QuantError):
    """An argument is outside its mathematical domain (sign, finiteness, shape)."""


class ImpliedVolNotFound(QuantError):
    """No implied volatility exists for (at least one of) the given prices.

    Parameters
    ----------
    reason
        Human-readable cause, e.g. ``"price below intrinsic value"``.
    index
        Flat index (C order, after broadcasting) of the first offending element.
    """

    def __init__(self, reason: str, index: int = 0) -> None:
        super().__init__(f"implied volatility not found (element {index}): {reason}")
        self.reason = reason
        self.index = index


class NoConvergence(QuantError):
    """An iterative method stopped before reaching its tolerance."""
