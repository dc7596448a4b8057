"""CAP 1.2 messages (OASIS Common Alerting Protocol) built with cap-tools' xsdata bindings and
checked against the CAP 1.2 schema (infra/data/CAP-v1.2.xsd, OASIS) before they are sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path

from cap_tools import models as cap
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDateTime

from infra.outbound.kinds import Notice

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA = Path(__file__).parent.parent / "data" / "CAP-v1.2.xsd"
# CAP 1.2's `sent` must carry a numeric offset ("Z" is refused by its pattern): China Standard
# Time, the jurisdiction's own (no daylight saving).
OFFSET = timezone(timedelta(hours=8))
SENDER_NAME = "Linkage command center / 联动指挥中心"
CATEGORIES = {"fire_hazard": cap.Category.FIRE, "public_security": cap.Category.SECURITY,
              "road_damage": cap.Category.INFRA, "water_leak": cap.Category.INFRA,
              "illegal_parking": cap.Category.TRANSPORT, "garbage": cap.Category.ENV,
              "noise": cap.Category.ENV, "dispute": cap.Category.SAFETY}
HEADLINES = {
    "major_reported": "Major case reported / 重大案件上报",
    "escalated_district": "Case escalated to the district / 案件升级至区级",
    "escalated_city": "Case escalated to the city / 案件升级至市级",
    "supervision_overdue": "Case overdue, escalated / 案件超时督办",
    "rule_fired": "Alert rule fired / 告警规则触发",
    "storm_started": "Alert storm started / 告警风暴",
}


class InvalidCap(ValueError):
    """A CAP message the schema refuses (a defect here: it is dead-lettered, never sent)."""


def _time(text: str) -> XmlDateTime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(OFFSET)
    return XmlDateTime(moment.year, moment.month, moment.day, moment.hour, moment.minute,
                       moment.second, 0, 8 * 60)


def _text(value: object, limit: int = 1000) -> str:
    return str(value)[:limit]


def build(notice: Notice, sender: str) -> cap.Alert:
    kind = sorted(notice.kinds)[0]
    facts = notice.facts
    major = "major_reported" in notice.kinds or "escalated_city" in notice.kinds
    info = cap.Info(
        language="zh-CN",
        categories=[CATEGORIES.get(str(facts.get("category")), cap.Category.SECURITY
                                   if kind in ("rule_fired", "storm_started")
                                   else cap.Category.OTHER)],
        event=_text(facts.get("category") or facts.get("rule") or kind, 200),
        urgency=cap.Urgency.IMMEDIATE if major else cap.Urgency.EXPECTED,
        severity=cap.Severity.SEVERE if major else cap.Severity.MODERATE,
        certainty=cap.Certainty.OBSERVED if kind == "major_reported" else cap.Certainty.LIKELY,
        sender_name=SENDER_NAME,
        headline=HEADLINES[kind],
        description=_text(facts.get("description") or facts.get("reason") or HEADLINES[kind]),
        parameters=[cap.Parameter(cap.ValueName(name), cap.Value(_text(value, 200)))
                    for name, value in (("linkage_kinds", " ".join(sorted(notice.kinds))),
                                        ("linkage_event", notice.event),
                                        ("linkage_subject", notice.subject),
                                        ("linkage_centers", " ".join(notice.centers)))],
        areas=[_area(notice)],
    )
    return cap.Alert(
        identifier=f"linkage-{notice.notification_id}",
        sender=sender,
        sent=_time(notice.at),
        status=cap.Status.ACTUAL,
        msg_type=cap.MsgType.ALERT,
        scope=cap.Scope.RESTRICTED,
        restriction="emergency command and linked agencies / 应急指挥及联动单位",
        incidents=notice.incident,
        infos=[info],
    )


def _area(notice: Notice) -> cap.Area:
    facts = notice.facts
    grid = facts.get("grid") or (notice.centers[0] if notice.centers else "unknown")
    location = facts.get("location") or {}
    circles = []
    if isinstance(location, dict) and "lat" in location and "lon" in location:
        circles = [f"{float(location['lat']):.6f},{float(location['lon']):.6f} 0.1"]
    return cap.Area(area_desc=f"grid {grid}", circles=circles,
                    geocodes=[cap.Geocode(cap.ValueName("linkage_grid"), cap.Value(str(grid)))])


@cache
def _serializer() -> XmlSerializer:
    return XmlSerializer(config=SerializerConfig(indent="  ", xml_declaration=True,
                                                 encoding="UTF-8"))


@cache
def _schema() -> object:
    import xmlschema

    return xmlschema.XMLSchema(str(SCHEMA))


def validate(document: bytes) -> None:
    """Nothing when the document is valid CAP 1.2; InvalidCap naming the problem otherwise."""
    errors = list(_schema().iter_errors(document.decode("utf-8")))  # type: ignore[attr-defined]
    if errors:
        raise InvalidCap(f"not valid CAP 1.2: {errors[0].reason or errors[0]}")


def render(notice: Notice, sender: str) -> bytes:
    """The CAP 1.2 XML of a notice, checked against the schema."""
    document = _serializer().render(build(notice, sender),
                                    ns_map={None: NAMESPACE}).encode("utf-8")
    validate(document)
    return document
