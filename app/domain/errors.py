"""Errors of the domain core.

Every error is a :class:`DomainError` (a ``ValueError``) that names the offending
field with a path the HTTP layer can report as is (``"legs[2].ratio"``), gives a reason a
trader can read, and carries a machine-readable ``code``::

    DomainError                 code "invalid_rfq"
    └── InvalidInstrument       code "invalid_instrument"
"""

from __future__ import annotations


class DomainError(ValueError):
    """A request that breaks a rule of the domain.

    Parameters
    ----------
    field
        Path of the offending field, e.g. ``"quantity"`` or ``"legs[2].ratio"``.
    reason
        Why it is wrong, in words.
    code
        Machine-readable error code.
    """

    def __init__(self, field: str, reason: str, code: str = "invalid_rfq") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.code = code


class InvalidInstrument(DomainError):
    """An instrument name or attributes that do not describe a valid option."""

    def __init__(self, field: str, reason: str, code: str = "invalid_instrument") -> None:
        super().__init__(field, reason, code)
