"""Dead letters as each reader of GET /api/ingest/stats may see them.

A dead letter is a feed payload that never became an alert (undecodable, or naming an unknown
camera). It belongs to the jurisdiction of the camera it names when the registry knows that
camera, otherwise to the root's (the city's intake). A reader sees the letters of its own
jurisdiction only. Plates, and Frigate sub-labels (a recognised plate or person), are masked for
everyone but admins: the letter never became an alert, so no console showed them to anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from command_center.problems import Problem
from domain import access
from domain.alert_service import UnknownArea, UnknownCamera
from domain.camera_alert import Observation
from domain.incident import Actor

if TYPE_CHECKING:  # command_center.types needs this module (through intake.py) to be loaded
    from command_center.types import Services

MASK = "[masked]"
PLATE_KEYS = frozenset({"plate", "recognized_license_plate", "sub_label"})
UNMASKED_ROLES = frozenset({"admin"})
SHOWN = 20  # the most recent visible letters returned

# A plate-like key and its value, in text that may be cut short or not JSON at all: a string
# (perhaps unterminated), an array (Frigate's [label, score] sub_label), or a bare token.
_KEYS = "|".join(sorted(PLATE_KEYS))
_PLATE = re.compile(rf'("(?:{_KEYS})"\s*:\s*)("(?:[^"\\]|\\.)*"?|\[[^\]]*\]?|[^,}}\]\s]+)')


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if k in PLATE_KEYS and v is not None else _masked(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def mask_plates(text: str) -> str:
    """The payload text with every plate-like value replaced by [masked]."""
    try:
        return orjson.dumps(_masked(orjson.loads(text))).decode()
    except orjson.JSONDecodeError:
        return _PLATE.sub(rf'\1"{MASK}"', text)


def _centers(svc: Services, camera: str | None) -> Sequence[str]:
    if camera is not None and svc.alerts is not None:
        try:
            return svc.alerts.locate(Observation(feed_event_id="", start_time=0.0,
                                                 camera=camera))[1]
        except (UnknownCamera, UnknownArea):
            pass
    return (svc.jurisdiction.root.id,)


def _may_read(svc: Services, actor: Actor, centers: Sequence[str]) -> bool:
    try:
        svc.authorize(actor, access.ALERT_READ, centers)
    except Problem:
        return False
    return True


def visible(svc: Services, actor: Actor, letters: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The letters `actor` may see, newest last, plates masked unless the role may see them."""
    shown = []
    for letter in letters:
        if not _may_read(svc, actor, _centers(svc, letter.get("camera"))):
            continue
        if actor["role"] not in UNMASKED_ROLES:
            letter = {**letter, "payload": mask_plates(letter["payload"])}
        shown.append(letter)
    return shown[-SHOWN:]


def stats_for(svc: Services, actor: Actor) -> dict[str, Any]:
    """The intake counters, with the recent dead letters `actor` may see."""
    stats = svc.intake.stats.as_dict()
    stats["recent_dead_letters"] = visible(svc, actor, svc.intake.stats.letters())
    return stats
