"""Request bodies, validated with msgspec; the OpenAPI schemas come from the same types."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

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


class Accept(Action, kw_only=True):
    note: OptionalNote = ""


class Reject(Action, kw_only=True):
    reason: ShortText


class MarkDuplicate(Action, kw_only=True):
    of: Annotated[str, Meta(min_length=1, max_length=64)]


class Dispatch(Action, kw_only=True):
    assignee: Assignee
    due: Annotated[datetime, Meta(tz=True, description="deadline, ISO 8601 with time zone")]
    note: OptionalNote = ""


class Return(Action, kw_only=True):
    reason: ShortText


class Transfer(Action, kw_only=True):
    assignee: Assignee
    due: Annotated[datetime, Meta(tz=True)] | None = None
    reason: OptionalNote = ""


class Acknowledge(Action, kw_only=True):
    pass


class Progress(Action, kw_only=True):
    note: Text


class Resolve(Action, kw_only=True):
    outcome: Text


class ReturnVisit(Action, kw_only=True):
    satisfaction: Annotated[int, Meta(ge=1, le=5)]
    comment: OptionalNote = ""


class Reopen(Action, kw_only=True):
    reason: OptionalNote = ""


class Close(Action, kw_only=True):
    note: OptionalNote = ""


class Supervise(Action, kw_only=True):
    note: Text
    by_center: Ident


class Escalate(Action, kw_only=True):
    reason: ShortText


ACTION_BODIES: dict[str, type[Action]] = {
    "accept": Accept,
    "reject": Reject,
    "mark-duplicate": MarkDuplicate,
    "dispatch": Dispatch,
    "return": Return,
    "transfer": Transfer,
    "acknowledge": Acknowledge,
    "progress": Progress,
    "resolve": Resolve,
    "return-visit": ReturnVisit,
    "reopen": Reopen,
    "close": Close,
    "supervise": Supervise,
    "escalate": Escalate,
}


def to_params(body: Action) -> dict[str, object]:
    """A validated action body as keyword arguments for the domain (datetimes as ISO text)."""
    params = msgspec.to_builtins(body)
    assert isinstance(params, dict)
    params.pop("expected_version", None)
    return params
