"""Feed formats → Observations: the JSON alert, the Frigate NVR event, OASIS CAP 1.2 XML.

Every decoder raises FeedError(status, detail): 400 when the payload is not JSON/XML at
all (or nests too deep), 413 for a batch or a CAP area list over the limit, 422 when a field
is wrong (the detail names it). The limits are domain/ingest_limits.py's, the same for every
path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from io import BytesIO
from typing import Annotated, Literal
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import msgspec
from defusedxml import DefusedXmlException
from msgspec import Meta, Struct

from command_center.decoding import InputError, JsonDecoder
from domain.camera_alert import Observation
from domain.ingest_limits import (
    EARLIEST,
    LATEST,
    MAX_BATCH,
    MAX_CAP_AREAS,
    MAX_CAP_POINTS,
    MAX_DESCRIPTION,
    MAX_EVENT_ID,
    MAX_NAME,
    MAX_PLATE,
    MAX_ZONES,
    time_problem,
)

EventId = Annotated[str, Meta(min_length=1, max_length=MAX_EVENT_ID)]
Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
Zones = Annotated[list[Name], Meta(max_length=MAX_ZONES)]
Plate = Annotated[str, Meta(max_length=MAX_PLATE)]
Score = Annotated[float, Meta(ge=0, le=1)]
# A time no date can hold would fail to format (the alert's `at`, its storm windows): a 500, or
# a 503 the ingest writer process answers for the same batch again and again.
Epoch = Annotated[float, Meta(ge=EARLIEST, le=LATEST, description="epoch seconds")]
Note = Annotated[str, Meta(max_length=MAX_DESCRIPTION)]

FeedError = InputError  # what every ingest path raises and catches


class AlertIn(Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """One alert as a camera gateway or sensor platform posts it.

    ``gc=False``: decoded JSON holds no reference cycles, so the collector need not track a
    batch of a thousand of these (msgspec's documented use of the option)."""

    id: EventId  # the feed's own event id: ingest is idempotent on it
    camera: Name | None = None
    grid: Name | None = None  # for sensors without a registered camera
    type: Literal["new", "update", "end"] = "new"
    kind: Literal["camera", "sensor"] = "camera"
    label: Name = "alert"
    score: Score | None = None
    top_score: Score | None = None
    zones: Zones = []
    plate: Plate | None = None
    start_time: Epoch | None = None
    at: Annotated[datetime, Meta(tz=True)] | None = None
    end_time: Epoch | None = None
    frame_time: Epoch | None = None
    false_positive: bool = False
    description: Note = ""


class AlertBatch(Struct, forbid_unknown_fields=True, gc=False):
    alerts: list[AlertIn]


def to_observation(alert: AlertIn, index: int) -> Observation:
    if alert.at is not None:
        at = alert.at.timestamp()  # in UTC, whatever offset it was sent with
        problem = time_problem(at)
        if problem is not None:
            raise FeedError(422, f"alert #{index}: at {alert.at.isoformat()} {problem}")
    if alert.start_time is not None:
        start = alert.start_time
    elif alert.at is not None:
        start = at
    else:
        raise FeedError(422, f"alert #{index}: needs start_time (epoch seconds) or at (ISO 8601)")
    if alert.camera is None and alert.grid is None:
        raise FeedError(422, f"alert #{index}: needs a camera (registered id) or a grid")
    # Positional, in Observation's field order (a third cheaper than keywords on the hot
    # path); test_feed_formats checks it against the keyword form.
    return Observation(
        alert.id,  # feed_event_id
        start,  # start_time
        alert.type,  # phase
        alert.kind,  # kind
        alert.camera,  # camera
        alert.grid,  # grid
        alert.label,  # label
        alert.score,  # score
        alert.top_score,  # top_score
        tuple(alert.zones),  # zones
        alert.plate,  # plate
        alert.end_time,  # end_time
        alert.frame_time,  # seen_time
        alert.false_positive,  # false_positive
        alert.description,  # description
        {},  # details
    )


class _BatchShape(Struct, gc=False):
    """Just enough of a body to tell a batch (and its size) from one alert."""

    alerts: list[msgspec.Raw] | None = None


# The common case (a valid batch, or one alert) decodes in one typed pass; anything else goes
# through the bounded decoders, which tell 400 from 413 from 422 and name the field.
_fast_batch = msgspec.json.Decoder(AlertBatch).decode
_fast_one = msgspec.json.Decoder(AlertIn).decode
_shape = JsonDecoder(_BatchShape, "alert batch")
_batch = JsonDecoder(AlertBatch, "alert batch")
_one = JsonDecoder(AlertIn, "alert")


def decode_alerts(body: bytes, max_batch: int = MAX_BATCH) -> list[Observation]:
    """One alert object, or {"alerts": [...]} with at most max_batch alerts."""
    if body.lstrip()[:1] != b"{":
        raise FeedError(400, 'malformed JSON: expected an alert object or {"alerts": [...]}')
    try:
        items = _fast_batch(body).alerts if b'"alerts"' in body[:64] else [_fast_one(body)]
    except (msgspec.MsgspecError, RecursionError):
        items = _careful(body, max_batch)
    if len(items) > max_batch:
        raise FeedError(413, f"batch has {len(items)} alerts; at most {max_batch} per request")
    if not items:
        raise FeedError(422, f"batch is empty; expected 1 to {max_batch} alerts in 'alerts'")
    return [to_observation(item, i) for i, item in enumerate(items)]


def _careful(body: bytes, max_batch: int) -> list[AlertIn]:
    shape = _shape.decode(body)
    if shape.alerts is None:
        return [_one.decode(body)]
    if len(shape.alerts) > max_batch:
        raise FeedError(413, f"batch has {len(shape.alerts)} alerts; at most {max_batch} per request")
    return _batch.decode(body).alerts


# -- Frigate NVR events (MQTT topic frigate/events) -------------------------------------------


# Frigate sends `sub_label` as a name, or (0.13 and later) as [name, score].
SubLabel = Annotated[str, Meta(max_length=MAX_NAME)] | Annotated[
    list[Annotated[str, Meta(max_length=MAX_NAME)] | float], Meta(max_length=2)]


class FrigateObject(Struct, kw_only=True):
    """The fields of a Frigate tracked object that are kept, bounded as an AlertIn's are; its
    other fields (boxes, regions, snapshot, path data) are skipped."""

    id: EventId
    camera: Name
    label: Name
    start_time: Epoch
    score: Score | None = None
    top_score: Score | None = None
    current_zones: Zones = []
    entered_zones: Zones = []
    end_time: Epoch | None = None
    frame_time: Epoch | None = None
    false_positive: bool | None = False
    recognized_license_plate: Plate | None = None
    sub_label: SubLabel | None = None


class FrigateEvent(Struct, kw_only=True):
    type: Literal["new", "update", "end"]
    after: FrigateObject  # `before` is skipped: the after state is what counts


_frigate = JsonDecoder(FrigateEvent, "Frigate event")


def decode_frigate(payload: bytes) -> Observation:
    """A Frigate `frigate/events` message: the `after` state is what counts."""
    message = _frigate.decode(payload)
    after = message.after
    plate = after.recognized_license_plate
    sub_label = after.sub_label
    if (plate is None and isinstance(sub_label, str) and len(sub_label) <= MAX_PLATE
            and after.label in ("car", "license_plate")):
        plate = sub_label  # a longer sub label is a known vehicle's name, not its plate
    return Observation(
        feed_event_id=after.id,
        phase=message.type,
        kind="camera",
        camera=after.camera,
        label=after.label,
        score=after.score,
        top_score=after.top_score,
        zones=tuple(after.current_zones or after.entered_zones),
        plate=plate,
        start_time=after.start_time,
        end_time=after.end_time,
        seen_time=after.frame_time,
        false_positive=bool(after.false_positive),
    )


# -- OASIS CAP 1.2 ---------------------------------------------------------------------------

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_MEDIA_TYPES = ("application/cap+xml", "application/xml", "text/xml")
CAP_SCORES = {"Extreme": 1.0, "Severe": 0.9, "Moderate": 0.6, "Minor": 0.3, "Unknown": None}
CAP_PHASES = {"Alert": "new", "Update": "update", "Cancel": "end", "Ack": None, "Error": None}

Locate = Callable[[float, float], "str | None"]  # (lon, lat) -> grid id


_AREA = f"{{{CAP_NS}}}area"


def _shown(text: str) -> str:
    """A value for an error message: its start, quoted (the whole of it may be huge)."""
    return repr(text) if len(text) <= 60 else f"{text[:60]!r}... ({len(text)} characters)"


def _text(node: Element | None, tag: str) -> str | None:
    if node is None:
        return None
    child = node.find(f"{{{CAP_NS}}}{tag}")
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _required(node: Element, tag: str, where: str = "alert") -> str:
    value = _text(node, tag)
    if value is None:
        raise FeedError(422, f"CAP {where} needs <{tag}>; it is missing or empty")
    return value


def _name(node: Element, tag: str) -> str | None:
    """A short CAP value kept with the alert (an enumeration, a grid id): at most MAX_NAME."""
    value = _text(node, tag)
    if value is not None and len(value) > MAX_NAME:
        raise FeedError(422, f"CAP <{tag}> is {len(value)} characters long; at most {MAX_NAME} "
                             "are accepted")
    return value


def _point(text: str, what: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(",")[:2])
    except ValueError:
        raise FeedError(422, f"CAP {what} must be 'lat,lon ...'; got {_shown(text)}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FeedError(422, f"CAP {what} point {lat},{lon} is out of range")
    return lon, lat


def _area_grid(info: Element, locate: Locate) -> str:
    for area in info.findall(_AREA):
        for geocode in area.findall(f"{{{CAP_NS}}}geocode"):
            if _text(geocode, "valueName") == "grid" and _text(geocode, "value"):
                return str(_name(geocode, "value"))
        circle = _text(area, "circle")
        if circle:
            grid = locate(*_point(circle.split()[0], "<circle>"))
            if grid:
                return grid
        polygon = _text(area, "polygon")
        if polygon:
            pairs = polygon.split()
            if len(pairs) > MAX_CAP_POINTS:
                raise FeedError(422, f"CAP <polygon> has {len(pairs)} points; at most "
                                     f"{MAX_CAP_POINTS} are accepted")
            points = [_point(p, "<polygon>") for p in pairs]
            lon = sum(p[0] for p in points) / len(points)
            lat = sum(p[1] for p in points) / len(points)
            grid = locate(lon, lat)
            if grid:
                return grid
    raise FeedError(422, "CAP <area> names no grid of this jurisdiction: expected a <geocode> with "
                         "valueName 'grid', or a <circle>/<polygon> inside one of its grids")


def _event_id(sender: str, identifier: str, what: str) -> str:
    event_id = f"{sender}/{identifier}"
    if len(event_id) > MAX_EVENT_ID:
        raise FeedError(422, f"CAP {what} is {len(event_id)} characters long as an event id; "
                             f"at most {MAX_EVENT_ID} are accepted")
    return event_id


def _parse(body: bytes) -> Element:
    """The CAP document; DTDs and entities are refused (XML bombs, external entities).

    Parsed in chunks, so a thread parsing a large message lets the event loop run in between,
    and stopped at the first <area> past MAX_CAP_AREAS: a message of thousands is refused for
    the cost of its first few."""
    areas = 0
    try:
        events = SafeET.iterparse(BytesIO(body), events=("end",), forbid_dtd=True,
                                  forbid_entities=True, forbid_external=True)
        for _event, element in events:
            if element.tag == _AREA:
                areas += 1
                if areas > MAX_CAP_AREAS:
                    raise FeedError(413, f"CAP message has more than {MAX_CAP_AREAS} <area> "
                                         f"blocks; at most {MAX_CAP_AREAS} are accepted")
    except DefusedXmlException as exc:
        raise FeedError(400, f"XML refused: {type(exc).__name__}; DTDs and entities are not "
                             "accepted in CAP messages") from None
    except ParseError as exc:
        raise FeedError(400, f"malformed XML: {exc}") from None
    root: Element = events.root  # set once iterparse is done
    return root


def decode_cap(body: bytes, locate: Locate) -> Observation:
    """A CAP 1.2 <alert> as an Observation, within the limits of every ingest path."""
    root = _parse(body)
    if root.tag != f"{{{CAP_NS}}}alert":
        raise FeedError(422, f"expected a CAP 1.2 <alert> in namespace {CAP_NS}; "
                             f"got <{_shown(root.tag)}>")
    identifier = _required(root, "identifier")
    sender = _required(root, "sender")
    sent = _required(root, "sent")
    msg_type = _required(root, "msgType")
    phase = CAP_PHASES.get(msg_type)
    if phase is None:
        raise FeedError(422, f"CAP msgType {_shown(msg_type)} is not ingested; expected Alert, "
                             "Update or Cancel")
    try:
        sent_at = datetime.fromisoformat(sent)
    except ValueError:
        raise FeedError(422, f"CAP <sent> must be a date-time with offset; got {_shown(sent)}") from None
    if sent_at.tzinfo is None:
        raise FeedError(422, f"CAP <sent> needs a time zone offset; got {_shown(sent)}")
    sent_time = sent_at.timestamp()  # in UTC, whatever offset it was sent with
    problem = time_problem(sent_time)
    if problem is not None:
        raise FeedError(422, f"CAP <sent> {sent} {problem}")
    event_id = _event_id(sender, identifier, "<sender>/<identifier>")
    references = _text(root, "references")
    if phase != "new" and references:
        # "sender,identifier,sent" of the original message: the same alert, updated or cancelled.
        first = references.split()[0].split(",")
        if len(first) >= 2:
            event_id = _event_id(first[0], first[1], "the alert <references> names")
    info = root.find(f"{{{CAP_NS}}}info")
    if info is None:
        raise FeedError(422, "CAP alert needs an <info> block")
    event = _required(info, "event", "<info>")
    severity = _text(info, "severity") or "Unknown"
    if severity not in CAP_SCORES:
        raise FeedError(422, f"CAP <severity> must be one of {', '.join(CAP_SCORES)}; "
                             f"got {_shown(severity)}")
    details = {"sender": sender, "identifier": identifier, "severity": severity,
               **{tag: _name(info, tag) for tag in ("urgency", "certainty", "category")}}
    grid = _area_grid(info, locate)
    description = _text(info, "headline") or _text(info, "description") or event
    return Observation(
        feed_event_id=event_id,
        phase=phase,
        kind="cap",
        grid=grid,
        label=event[:MAX_NAME],
        score=CAP_SCORES[severity],
        start_time=sent_time,
        end_time=sent_time if phase == "end" else None,
        description=description[:MAX_DESCRIPTION],
        details=details,
    )
