"""Request bodies, validated with msgspec; the OpenAPI schemas come from the same types.

Each loop action's body names its action (`@body_of`); which actions exist, and in what order
the API lists them, comes from the domain's table (domain/actions.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from domain.actions import LOOP_ACTIONS, PATHS

Text = Annotated[str, Meta(min_length=1, max_length=4000)]
ShortText = Annotated[str, Meta(min_length=1, max_length=500)]
OptionalNote = Annotated[str, Meta(max_length=4000)]
Ident = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Version = Annotated[int, Meta(ge=1, description="optimistic concurrency: the version you read")]

Source = Literal["hotline", "grid_worker", "camera", "sensor", "wechat", "resident", "department", "open311"]
Severity = Literal["routine", "major"]
AssigneeKind = Literal["department", "grid_worker", "party"]


class Base(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Location(Base, kw_only=True):
    lon: Annotated[float, Meta(ge=-180, le=180)]
    lat: Annotated[float, Meta(ge=-90, le=90)]


class Reporter(Base, kw_only=True):
    name: Annotated[str, Meta(max_length=100)] | None = None
    phone: Annotated[str, Meta(max_length=32, pattern=r"^[0-9+\- ]*$")] | None = None


class ReportIncident(Base, kw_only=True):
    source: Source
    category: Ident
    grid: Ident
    description: Text
    severity: Severity = "routine"
    location: Location | None = None
    reporter: Reporter | None = None
    external_id: Ident | None = None


class Assignee(Base, kw_only=True):
    kind: AssigneeKind
    id: Ident


class Action(Base, kw_only=True):
    expected_version: Version | None = None


A = TypeVar("A", bound=type[Action])
_BODIES: dict[str, type[Action]] = {}


def body_of(action: str) -> Callable[[A], A]:
    """Register a Struct as the request body of a loop action (named as in the HTTP path)."""
    if action not in PATHS:
        raise ValueError(f"{action!r} is not a loop action of domain/actions.py; expected one "
                         f"of {', '.join(PATHS)}")

    def register(body: A) -> A:
        _BODIES[action] = body
        return body

    return register


@body_of("accept")
class Accept(Action, kw_only=True):
    note: OptionalNote = ""


@body_of("reject")
class Reject(Action, kw_only=True):
    reason: ShortText


@body_of("mark-duplicate")
class MarkDuplicate(Action, kw_only=True):
    of: Annotated[str, Meta(min_length=1, max_length=64)]


@body_of("dispatch")
class Dispatch(Action, kw_only=True):
    assignee: Assignee
    due: Annotated[datetime, Meta(tz=True, description=(
        "resolve deadline, ISO 8601 with time zone; default: the SLA policy's resolve time. "
        "Later than the policy's time needs due_reason"))] | None = None
    note: OptionalNote = ""
    due_reason: OptionalNote = ""


@body_of("return")
class Return(Action, kw_only=True):
    reason: ShortText


@body_of("transfer")
class Transfer(Action, kw_only=True):
    assignee: Assignee
    due: Annotated[datetime, Meta(tz=True)] | None = None
    reason: OptionalNote = ""
    due_reason: OptionalNote = ""


@body_of("acknowledge")
class Acknowledge(Action, kw_only=True):
    pass


@body_of("progress")
class Progress(Action, kw_only=True):
    note: Text


@body_of("resolve")
class Resolve(Action, kw_only=True):
    outcome: Text


@body_of("return-visit")
class ReturnVisit(Action, kw_only=True):
    satisfaction: Annotated[int, Meta(ge=1, le=5)]
    comment: OptionalNote = ""


@body_of("visit-attempt")
class VisitAttempt(Action, kw_only=True):
    at: Annotated[datetime, Meta(tz=True, description="when the unanswered call was made")]
    note: OptionalNote = ""


@body_of("reopen")
class Reopen(Action, kw_only=True):
    reason: OptionalNote = ""


@body_of("close")
class Close(Action, kw_only=True):
    note: OptionalNote = ""


@body_of("supervise")
class Supervise(Action, kw_only=True):
    note: Text
    by_center: Ident


@body_of("escalate")
class Escalate(Action, kw_only=True):
    reason: ShortText


def _bodies_in_table_order() -> dict[str, type[Action]]:
    missing = [action.path for action in LOOP_ACTIONS if action.path not in _BODIES]
    if missing:
        raise RuntimeError(f"no request body for loop action(s) {', '.join(missing)}; "
                           "expected a Struct registered with @body_of for each")
    return {action.path: _BODIES[action.path] for action in LOOP_ACTIONS}


# loop action (as in the path) -> its body; the routes and /openapi.json follow it
ACTION_BODIES: dict[str, type[Action]] = _bodies_in_table_order()


def to_params(body: Action) -> dict[str, object]:
    """A validated action body as keyword arguments for the domain (datetimes as ISO text)."""
    params = msgspec.to_builtins(body)
    assert isinstance(params, dict)
    params.pop("expected_version", None)
    return params
