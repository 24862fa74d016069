"""RFQ states and the one table of legal transitions."""

from __future__ import annotations

from enum import StrEnum


class RfqState(StrEnum):
    NEW = "new"
    QUOTING = "quoting"
    QUOTED = "quoted"
    ACCEPTED = "accepted"
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    PASSED = "passed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


S = RfqState
TRANSITIONS: dict[RfqState, frozenset[RfqState]] = {
    S.NEW: frozenset({S.QUOTING, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.QUOTING: frozenset({S.QUOTED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.PASSED}),
    S.QUOTED: frozenset({S.ACCEPTED, S.PASSED, S.EXPIRED, S.CANCELLED, S.QUOTING}),
    S.ACCEPTED: frozenset({S.FILLED, S.PARTIALLY_FILLED}),
    S.FILLED: frozenset(),
    S.PARTIALLY_FILLED: frozenset(),
    S.PASSED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
FINAL: frozenset[RfqState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
#: states in which the RFQ's deadline still applies (an accepted RFQ is being filled)
EXPIRABLE: frozenset[RfqState] = frozenset(s for s, nxt in TRANSITIONS.items() if S.EXPIRED in nxt)


class IllegalTransition(Exception):
    def __init__(self, current: RfqState, target: RfqState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        super().__init__(
            f"an RFQ in state {current.value!r} cannot become {target.value!r} (allowed: {allowed})"
        )
        self.current = current
        self.target = target


def check_transition(current: RfqState, target: RfqState) -> None:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
