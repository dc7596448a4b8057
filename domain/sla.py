"""The SLA rule (step 4, tracking and supervision): when an overdue case escalates, and where.

A case being worked (`SUPERVISABLE`) that has a deadline escalates one level up its centers
once the deadline has passed, then again each further `grace`, until it reaches the top of
`ESCALATION_LEVELS`. Pure: the caller passes the clock's reading; a timer at the edge
(infra/runner/sla_watcher.py) asks this rule and runs the `escalate` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.incident import ESCALATION_LEVELS, Status, can_escalate


@dataclass(frozen=True, slots=True)
class Escalation:
    """A case's next escalation: the level it reaches, and the time after which it is due."""

    level: str
    after: datetime


def next_escalation(
    status: Status, due: datetime | None, escalations: int, grace: timedelta
) -> Escalation | None:
    """The next escalation a case's deadline brings; None when no deadline can escalate it
    (not being worked, no deadline, or already at the top level)."""
    if due is None or not can_escalate(status, escalations):
        return None
    # Each escalation so far buys the case one more grace period before the next.
    return Escalation(level=ESCALATION_LEVELS[escalations], after=due + grace * escalations)


def overdue(
    status: Status, due: datetime | None, escalations: int, grace: timedelta, now: datetime
) -> Escalation | None:
    """The escalation that is due `now`, if any."""
    step = next_escalation(status, due, escalations, grace)
    return step if step is not None and now > step.after else None
