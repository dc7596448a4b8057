"""Our incidents as Open311 service requests (pure)."""

from __future__ import annotations

from typing import Any

from command_center.open311_catalog import Catalog

CLOSED = frozenset({"closed", "rejected", "duplicate"})


def open311_status(status: str) -> str:
    """Open311 knows two statuses: a case is `closed` once it is final, else `open`."""
    return "closed" if status in CLOSED else "open"


def status_notes(incident: dict[str, Any], agency: str | None) -> str:
    """What our status says, in words (our status names are kept, for precision)."""
    status = str(incident["status"])
    if status == "rejected":
        return "rejected / 不予受理"
    if status == "duplicate":
        return f"duplicate of {incident.get('duplicate_of')} / 重复案件"
    if status == "closed":
        outcome = incident.get("outcome")
        return f"closed / 已办结: {outcome}" if outcome else "closed / 已办结"
    if status in ("dispatched", "acknowledged") and agency:
        return f"{status}: {agency}"
    if status in ("resolved", "visited") and incident.get("outcome"):
        return f"{status}: {incident['outcome']}"
    return status


def service_request(incident: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """One incident (`Incident.as_dict()`) as a GeoReport v2 service request."""
    service = catalog.services.get(str(incident["category"]))
    agency = catalog.agency_name(incident.get("assignee"))
    location = incident.get("location") or {}
    return {
        "service_request_id": incident["id"],
        "status": open311_status(incident["status"]),
        "status_notes": status_notes(incident, agency),
        "service_name": service.service_name if service else incident["category"],
        "service_code": incident["category"],
        "description": incident["description"],
        "agency_responsible": agency,
        "service_notice": None,
        "requested_datetime": incident.get("created_at"),
        "updated_datetime": incident.get("updated_at"),
        "expected_datetime": incident.get("due"),
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": location.get("lat"),
        "long": location.get("lon"),
        "media_url": None,
    }
