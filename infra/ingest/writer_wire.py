"""The ingest writer's wire (msgpack): a located batch one way, its outcomes or its error back.

A domain error crosses as its class name, message and attributes, and is rebuilt into the same
class on the other side (so it maps to the same HTTP status there); anything else crosses as
`Failed` and becomes IngestUnavailable: nothing of the batch was stored, send it again.
"""

from __future__ import annotations

from typing import Any

import msgspec

from domain.alert_service import UnknownArea, UnknownCamera
from domain.alert_store import IngestUnavailable, Located, Outcome
from domain.application import NotFound, UnknownGrid, VersionConflict
from domain.camera_alert import AlertAlreadyHandled, Observation
from domain.incident import DomainError, InvalidCommand

# (feed, observations, located, actor, the id of the API key the batch came with, or None)
Request = tuple[str, list[Observation], Located, dict[str, Any], str | None]


class Stored(msgspec.Struct, tag="stored", array_like=True):
    outcomes: list[tuple[str, str, list[str], str | None]]  # alert, status, rules, incident


class Refused(msgspec.Struct, tag="refused", array_like=True):
    error: str  # a class of REFUSALS, by name
    message: str
    fields: dict[str, Any]  # its attributes


class Failed(msgspec.Struct, tag="failed", array_like=True):
    error: str  # "TypeName: message", for the detail of the 503


class Revoked(msgspec.Struct, tag="revoked", array_like=True):
    """The batch's API key was revoked after the HTTP process authenticated it."""

    detail: str


Reply = Stored | Refused | Failed | Revoked

# The domain errors that cross by class. A subclass not listed crosses as its nearest listed
# base, with its message only: IllegalTransition, for one, whose status is an enum that msgpack
# would turn into a plain string (no batch raises it).
REFUSALS: dict[str, type[DomainError]] = {
    cls.__name__: cls
    for cls in (DomainError, InvalidCommand, NotFound, VersionConflict, UnknownGrid,
                AlertAlreadyHandled, UnknownCamera, UnknownArea)
}

encode_request = msgspec.msgpack.Encoder().encode
decode_request = msgspec.msgpack.Decoder(Request).decode
encode_reply = msgspec.msgpack.Encoder().encode
decode_reply = msgspec.msgpack.Decoder(Reply).decode


def stored(outcomes: list[Outcome]) -> Stored:
    return Stored([(o.alert, o.status, o.rules, o.incident) for o in outcomes])


def outcomes_of(reply: Stored) -> list[Outcome]:
    return [Outcome(alert, status, rules, incident) for alert, status, rules, incident in reply.outcomes]


def refused(exc: DomainError) -> Refused:
    """The error as it crosses the wire."""
    cls = next(c for c in type(exc).__mro__ if REFUSALS.get(c.__name__) is c)
    fields = dict(vars(exc)) if cls is type(exc) else {}
    return Refused(cls.__name__, str(exc), fields)


def rebuilt(reply: Refused) -> DomainError:
    """The error the writer raised: same class, message and attributes (its constructor is not
    run again: the message is already made)."""
    cls = REFUSALS.get(reply.error, DomainError)
    exc = cls.__new__(cls, reply.message)  # BaseException.__new__ sets args = (message,)
    vars(exc).update(reply.fields)
    return exc


def unavailable(reply: Failed) -> IngestUnavailable:
    return IngestUnavailable(f"storing the batch failed ({reply.error}); nothing of it was "
                             "acknowledged: send it again")
