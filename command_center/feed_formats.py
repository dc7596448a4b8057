"""Feed formats → Observations: the JSON alert, the Frigate NVR event, OASIS CAP 1.2 XML.

Every decoder raises FeedError(status, detail): 400 when the payload is not JSON/XML at
all, 413 for a batch over the limit, 422 when a field is wrong (the detail names it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
import msgspec
from defusedxml import DefusedXmlException
from msgspec import Meta, Struct

from domain.camera_alert import Observation

MAX_BATCH = 1000

EventId = Annotated[str, Meta(min_length=1, max_length=200)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
Score = Annotated[float, Meta(ge=0, le=1)]
# Up to 9999-12-31T23:59:59Z: a later time has no date (the alert's `at` and its storm window
# would fail to format: a 500, or a 503 retried forever through the ingest writer process).
MAX_EPOCH = 253_402_300_799.0
Epoch = Annotated[float, Meta(ge=0, le=MAX_EPOCH, description="epoch seconds")]
Note = Annotated[str, Meta(max_length=2000)]


class FeedError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


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
    zones: Annotated[list[Name], Meta(max_length=64)] = []
    plate: Annotated[str, Meta(max_length=32)] | None = None
    start_time: Epoch | None = None
    at: Annotated[datetime, Meta(tz=True)] | None = None
    end_time: Epoch | None = None
    frame_time: Epoch | None = None
    false_positive: bool = False
    description: Note = ""


class AlertBatch(Struct, forbid_unknown_fields=True, gc=False):
    alerts: list[AlertIn]


def to_observation(alert: AlertIn, index: int) -> Observation:
    if alert.start_time is not None:
        start = alert.start_time
    elif alert.at is not None:
        start = alert.at.timestamp()
        if start > MAX_EPOCH:  # 9999-12-31T23:59:59-12:00 is in year 10000 UTC
            raise FeedError(422, f"alert #{index}: at is after 9999-12-31T23:59:59Z")
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


_any_decoder = msgspec.json.Decoder()
_batch_decoder = msgspec.json.Decoder(AlertBatch)
_one_decoder = msgspec.json.Decoder(AlertIn)


def decode_alerts(body: bytes, max_batch: int = MAX_BATCH) -> list[Observation]:
    """One alert object, or {"alerts": [...]} with at most max_batch alerts."""
    try:
        if body.lstrip()[:1] != b"{":
            raise msgspec.DecodeError("expected a JSON object")
        # The common case (a valid batch, or one alert) decodes in one typed pass.
        if b'"alerts"' in body[:64]:
            items = _batch_decoder.decode(body).alerts
        else:
            items = [_one_decoder.decode(body)]
    except msgspec.ValidationError as exc:
        items = _slow_path(body, exc, max_batch)
    except msgspec.DecodeError as exc:
        raise FeedError(400, f"malformed JSON: {exc}; expected an alert object or "
                             '{"alerts": [...]}') from None
    if len(items) > max_batch:
        raise FeedError(413, f"batch has {len(items)} alerts; at most {max_batch} per request")
    if not items:
        raise FeedError(422, f"batch is empty; expected 1 to {max_batch} alerts in 'alerts'")
    return [to_observation(item, i) for i, item in enumerate(items)]


def _slow_path(body: bytes, exc: msgspec.ValidationError, max_batch: int) -> list[AlertIn]:
    """Decode generically to tell 413 from 422 and to name the field that is wrong."""
    try:
        raw = _any_decoder.decode(body)
    except msgspec.DecodeError as bad:
        raise FeedError(400, f"malformed JSON: {bad}") from None
    if isinstance(raw, dict) and "alerts" in raw:
        alerts = raw["alerts"]
        if isinstance(alerts, list) and len(alerts) > max_batch:
            raise FeedError(413, f"batch has {len(alerts)} alerts; at most {max_batch} per request")
        try:
            return msgspec.convert(raw, AlertBatch).alerts
        except msgspec.ValidationError as error:
            raise FeedError(422, f"invalid alert batch: {error}") from None
    if isinstance(raw, dict):
        try:
            return [msgspec.convert(raw, AlertIn)]
        except msgspec.ValidationError as error:
            raise FeedError(422, f"invalid alert: {error}") from None
    raise FeedError(422, f"invalid alert: {exc}") from None


# -- Frigate NVR events (MQTT topic frigate/events) -------------------------------------------


class FrigateObject(Struct, kw_only=True):
    id: EventId
    camera: Name
    label: Name
    start_time: Epoch
    score: Score | None = None
    top_score: Score | None = None
    current_zones: list[str] = []
    entered_zones: list[str] = []
    end_time: Epoch | None = None
    frame_time: Epoch | None = None
    false_positive: bool | None = False
    recognized_license_plate: str | None = None
    sub_label: Any = None


class FrigateEvent(Struct, kw_only=True):
    type: Literal["new", "update", "end"]
    after: FrigateObject
    before: dict[str, Any] | None = None


_frigate_decoder = msgspec.json.Decoder(FrigateEvent)


def decode_frigate(payload: bytes) -> Observation:
    """A Frigate `frigate/events` message: the `after` state is what counts."""
    try:
        message = _frigate_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise FeedError(422, f"invalid Frigate event: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FeedError(400, f"malformed JSON in Frigate event: {exc}") from None
    after = message.after
    plate = after.recognized_license_plate
    if plate is None and isinstance(after.sub_label, str) and after.label in ("car", "license_plate"):
        plate = after.sub_label
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


def _point(text: str, what: str) -> tuple[float, float]:
    try:
        lat, lon = (float(x) for x in text.split(",")[:2])
    except ValueError:
        raise FeedError(422, f"CAP {what} must be 'lat,lon ...'; got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FeedError(422, f"CAP {what} point {lat},{lon} is out of range")
    return lon, lat


def _area_grid(info: Element, locate: Locate) -> str:
    for area in info.findall(f"{{{CAP_NS}}}area"):
        for geocode in area.findall(f"{{{CAP_NS}}}geocode"):
            if _text(geocode, "valueName") == "grid" and _text(geocode, "value"):
                return str(_text(geocode, "value"))
        circle = _text(area, "circle")
        if circle:
            grid = locate(*_point(circle.split()[0], "<circle>"))
            if grid:
                return grid
        polygon = _text(area, "polygon")
        if polygon:
            points = [_point(p, "<polygon>") for p in polygon.split()]
            lon = sum(p[0] for p in points) / len(points)
            lat = sum(p[1] for p in points) / len(points)
            grid = locate(lon, lat)
            if grid:
                return grid
    raise FeedError(422, "CAP <area> names no grid of this jurisdiction: expected a <geocode> with "
                         "valueName 'grid', or a <circle>/<polygon> inside one of its grids")


def decode_cap(body: bytes, locate: Locate) -> Observation:
    """A CAP 1.2 <alert>; DTDs and entities are refused (XML bombs, external entities)."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FeedError(400, f"XML refused: {type(exc).__name__}; DTDs and entities are not "
                             "accepted in CAP messages") from None
    except ParseError as exc:
        raise FeedError(400, f"malformed XML: {exc}") from None
    if root.tag != f"{{{CAP_NS}}}alert":
        raise FeedError(422, f"expected a CAP 1.2 <alert> in namespace {CAP_NS}; got <{root.tag}>")
    identifier = _required(root, "identifier")
    sender = _required(root, "sender")
    sent = _required(root, "sent")
    msg_type = _required(root, "msgType")
    phase = CAP_PHASES.get(msg_type)
    if phase is None:
        raise FeedError(422, f"CAP msgType {msg_type!r} is not ingested; expected Alert, Update or Cancel")
    try:
        sent_at = datetime.fromisoformat(sent)
    except ValueError:
        raise FeedError(422, f"CAP <sent> must be a date-time with offset; got {sent!r}") from None
    if sent_at.tzinfo is None:
        raise FeedError(422, f"CAP <sent> needs a time zone offset; got {sent!r}")
    event_id = f"{sender}/{identifier}"
    references = _text(root, "references")
    if phase != "new" and references:
        # "sender,identifier,sent" of the original message: the same alert, updated or cancelled.
        first = references.split()[0].split(",")
        if len(first) >= 2:
            event_id = f"{first[0]}/{first[1]}"
    info = root.find(f"{{{CAP_NS}}}info")
    if info is None:
        raise FeedError(422, "CAP alert needs an <info> block")
    event = _required(info, "event", "<info>")
    severity = _text(info, "severity") or "Unknown"
    if severity not in CAP_SCORES:
        raise FeedError(422, f"CAP <severity> must be one of {', '.join(CAP_SCORES)}; got {severity!r}")
    grid = _area_grid(info, locate)
    description = _text(info, "headline") or _text(info, "description") or event
    return Observation(
        feed_event_id=event_id,
        phase=phase,
        kind="cap",
        grid=grid,
        label=event[:128],
        score=CAP_SCORES[severity],
        start_time=sent_at.timestamp(),
        end_time=sent_at.timestamp() if phase == "end" else None,
        description=description[:2000],
        details={
            "sender": sender,
            "identifier": identifier,
            "severity": severity,
            "urgency": _text(info, "urgency"),
            "certainty": _text(info, "certainty"),
            "category": _text(info, "category"),
        },
    )
