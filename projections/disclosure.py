"""Public disclosure of handled cases: a pure fold over incident events, and the redaction of
free text.

A case is published when it is closed: its category, community, township, reported and closed
times, the outcome (redacted) and the satisfaction. Only the newest `FEED_LIMIT` published
cases are kept (the feed pages through them), with monthly figures per township for the last
`MONTHS` months: nothing grows with history. What is shown, and when (the publish delay and the
categories opted out), is the reader's choice at query time, so changing either needs no rebuild.

`redact` replaces, in free text, anything that looks like an ID number, a phone number, a
vehicle plate or a street number, and every exact string it is given (the reporter's name and
phone, the names of the residents of the case's grid).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from projections.envelope import Envelope

FEED_LIMIT = 2000
MONTHS = 24
OUTCOME_CHARS = 200
MASK = "***"

_PATTERNS = [
    re.compile(r"\d{17}[\dXx]|\d{15}"),  # ID numbers (18- and the old 15-digit)
    re.compile(r"(?:\+?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}"),  # mobile phones
    re.compile(r"(?:\(?0\d{2,3}\)?[-\s]?)?\d{7,8}"),  # landlines, long digit runs
    # plates: a province character, a letter, then 5 or 6 letters/digits (new-energy: 6)
    re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领]"
               r"\s?[A-Z]\s?[·.]?\s?[A-Z0-9]{5,6}", re.IGNORECASE),
    # street numbers: 12号, 3栋, 2单元, 501室, 8弄, 4幢, 6号楼; "No. 12", "12 Main Street"
    re.compile(r"\d+\s?(?:号楼|号院|号|栋|幢|单元|室|弄|楼|层|户)"),
    re.compile(r"\b(?:No\.?|Room|Rm\.?|Apt\.?|Unit)\s?\d+[A-Za-z]?\b", re.IGNORECASE),
    re.compile(r"\b\d+[A-Za-z]?\s+[A-Z][a-z]+\s+(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln)\b"),
]


def redact(text: str, exact: Iterable[str] = ()) -> str:
    """Free text with personal data replaced by ***."""
    for value in sorted({v for v in exact if v and len(v) >= 2}, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


@dataclass
class _Open:
    grid: str
    category: str
    reported_at: str
    reporter: tuple[str, ...]
    outcome: str = ""
    satisfaction: int | None = None


@dataclass
class Disclosure:
    position: int = 0
    open: dict[str, _Open] = field(default_factory=dict)  # incident -> what publishing needs
    published: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    # month -> township -> category -> {"closed", "rated", "satisfaction_sum"}
    months: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)


def _month(at: str) -> str:
    return at[:7]


def apply(disclosure: Disclosure, event: Envelope, units_of: Any) -> Disclosure:
    """Fold an incident event; `units_of(grid)` gives (community, township) of a grid."""
    if event.notification_id <= disclosure.position:
        return disclosure
    disclosure.position = event.notification_id
    if event.aggregate != "Incident":
        return disclosure
    data, incident, name = event.data, event.originator_id, event.name
    if name == "Reported":
        reporter = data.get("reporter") or {}
        disclosure.open[incident] = _Open(
            str(data.get("grid", "")), str(data.get("category", "")), event.at,
            tuple(str(v) for v in reporter.values() if isinstance(v, str)))
        return disclosure
    case = disclosure.open.get(incident)
    if case is None:
        return disclosure
    if name == "Resolved":
        case.outcome = str(data.get("outcome", ""))[:OUTCOME_CHARS]
    elif name == "ReturnVisited":
        satisfaction = data.get("satisfaction")
        case.satisfaction = satisfaction if isinstance(satisfaction, int) else None
    elif name == "Reopened":
        case.satisfaction = None
    elif name in ("Rejected", "MarkedDuplicate"):
        disclosure.open.pop(incident, None)
    elif name == "Closed":
        disclosure.open.pop(incident, None)
        community, township = units_of(case.grid)
        disclosure.published[incident] = {
            "id": incident, "n": event.notification_id, "category": case.category,
            "grid": case.grid, "community": community, "township": township,
            "reported": case.reported_at, "closed": event.at, "outcome": case.outcome,
            "satisfaction": case.satisfaction, "_reporter": case.reporter}
        while len(disclosure.published) > FEED_LIMIT:
            disclosure.published.popitem(last=False)
        month = disclosure.months.setdefault(_month(event.at), {})
        figures = month.setdefault(township, {}).setdefault(
            case.category, {"closed": 0, "rated": 0, "satisfaction_sum": 0})
        figures["closed"] += 1
        if case.satisfaction is not None:
            figures["rated"] += 1
            figures["satisfaction_sum"] += case.satisfaction
        for old in sorted(disclosure.months)[:-MONTHS]:
            del disclosure.months[old]
    return disclosure
