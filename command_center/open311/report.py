"""`POST requests.{format}`: the form a citizen's app sends, checked whole (pure).

Every field the spec defines is read; anything else is refused by name, as is a field given
twice, a value past its limit, an unknown service, attribute or value, and a location that is
missing or half given. Attribute answers and the media URL go into the incident's description.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from command_center.open311.formats import Open311Error
from command_center.open311_catalog import Attribute, Catalog, Service

FIELDS = frozenset({"api_key", "jurisdiction_id", "service_code", "lat", "long",
                    "address_string", "address_id", "email", "device_id", "account_id",
                    "first_name", "last_name", "phone", "description", "media_url"})
MAX_FIELDS = 100
LIMITS = {"description": 4000, "address_string": 500, "address_id": 128, "email": 254,
          "device_id": 128, "account_id": 128, "first_name": 50, "last_name": 50, "phone": 32,
          "media_url": 2000, "api_key": 200, "jurisdiction_id": 128, "service_code": 64,
          "lat": 40, "long": 40}
ATTRIBUTE_LIMITS = {"string": 200, "text": 4000}
_ATTRIBUTE = re.compile(r"^attribute\[(?P<code>[^\[\]]{1,64})\](?P<many>\[\])?$")
_PHONE = re.compile(r"^[0-9+\- ]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class NewRequest:
    api_key: str | None
    service: Service
    lon: float | None
    lat: float | None
    address: str | None
    description: str
    reporter: dict[str, str] | None
    account_id: str | None


def _bad(description: str) -> Open311Error:
    return Open311Error(400, description)


def parse_form(body: bytes) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The form's single fields, and its attribute answers by code."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise _bad("the form is not UTF-8; Open311 requires UTF-8 everywhere") from None
    except ValueError as exc:
        raise _bad(f"the form could not be read ({exc}); at most {MAX_FIELDS} fields, "
                   "application/x-www-form-urlencoded") from None
    fields: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for name, value in pairs:
        matched = _ATTRIBUTE.match(name)
        if matched:
            values = attributes.setdefault(matched["code"], [])
            if values and not matched["many"]:
                raise _bad(f"field {name} is given twice; a list answer is sent as "
                           f"attribute[{matched['code']}][]")
            values.append(value)
            continue
        if name not in FIELDS:
            raise _bad(f"field {name[:64]!r} is not a GeoReport v2 field; expected "
                       f"{', '.join(sorted(FIELDS))} or attribute[code]")
        if name in fields:
            raise _bad(f"field {name} is given twice; expected it at most once")
        if len(value) > LIMITS[name]:
            raise _bad(f"field {name} is {len(value)} characters; at most {LIMITS[name]}")
        fields[name] = value.strip()
    return fields, attributes


def _coordinate(fields: dict[str, str], name: str, bound: float) -> float:
    text = fields[name]
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{name} must be a decimal number of degrees (WGS84); got {text[:40]!r}") from None
    if not (math.isfinite(value) and -bound <= value <= bound):
        raise _bad(f"{name} must be between -{bound:g} and {bound:g} degrees; got {text[:40]!r}")
    return value


def _answer(service: Service, attribute: Attribute, values: list[str]) -> str:
    """One attribute's answer checked against its definition, as the description shows it."""
    where = f"attribute[{attribute.code}] of service {service.service_code}"
    if attribute.datatype != "multivaluelist" and len(values) > 1:
        raise _bad(f"{where} takes one value; got {len(values)}")
    if attribute.datatype in ("singlevaluelist", "multivaluelist"):
        names = {v.key: v.name for v in attribute.values}
        for value in values:
            if value not in names:
                raise _bad(f"{where} must be one of {', '.join(names)}; got {value[:40]!r}")
        return ", ".join(names[v] for v in values)
    value = values[0]
    if attribute.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _bad(f"{where} must be a number; got {value[:40]!r}")
    elif attribute.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise _bad(f"{where} must be an ISO 8601 time with its offset, e.g. "
                       f"2026-11-05T08:15:30+08:00; got {value[:40]!r}")
    else:
        limit = ATTRIBUTE_LIMITS[attribute.datatype]
        if len(value) > limit:
            raise _bad(f"{where} is {len(value)} characters; at most {limit}")
    return value


def new_request(body: bytes, catalog: Catalog, jurisdiction_id: str) -> NewRequest:
    fields, answers = parse_form(body)
    if fields.get("jurisdiction_id") not in (None, "", jurisdiction_id):
        raise Open311Error(404, f"jurisdiction_id {fields['jurisdiction_id'][:64]!r} is not "
                           f"served here; expected {jurisdiction_id!r} or none")
    code = fields.get("service_code", "")
    if not code:
        raise _bad("service_code was not provided; see services.json for the services")
    service = catalog.services.get(code)
    if service is None:
        raise _bad(f"service_code {code[:64]!r} is not a service here; see services.json")
    lon = lat = None
    if ("lat" in fields) != ("long" in fields):
        raise _bad("lat and long go together; got only one of them")
    if "lat" in fields:
        lat, lon = _coordinate(fields, "lat", 90), _coordinate(fields, "long", 180)
    address = fields.get("address_string") or None
    if lat is None and address is None:
        raise _bad("location is missing: send lat and long, or address_string")
    known = {a.code: a for a in service.attributes}
    for unknown in answers.keys() - known.keys():
        raise _bad(f"attribute[{unknown[:64]}] is not an attribute of service {code}; see "
                   f"services/{code}.json")
    lines = []
    for attribute in sorted(service.attributes, key=lambda a: a.order):
        values = [v for v in answers.get(attribute.code, []) if v != ""]
        if not values:
            if attribute.required:
                raise _bad(f"attribute[{attribute.code}] is required for service {code}: "
                           f"{attribute.description}")
            continue
        lines.append(f"{attribute.description}: {_answer(service, attribute, values)}")
    media = fields.get("media_url")
    if media:
        parts = urlsplit(media)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _bad(f"media_url must be an http(s) URL; got {media[:80]!r}")
        lines.append(f"media: {media}")
    if address:
        lines.append(f"address: {address}")
    text = fields.get("description") or service.service_name
    description = "\n".join([text, *lines])[:LIMITS["description"]]
    return NewRequest(fields.get("api_key") or None, service, lon, lat, address, description,
                      _reporter(fields), fields.get("account_id") or None)


def _reporter(fields: dict[str, str]) -> dict[str, str] | None:
    reporter: dict[str, Any] = {}
    name = " ".join(p for p in (fields.get("first_name"), fields.get("last_name")) if p)
    if name:
        reporter["name"] = name
    phone = fields.get("phone")
    if phone:
        if not _PHONE.match(phone):
            raise _bad(f"phone may hold digits, spaces, + and - only; got {phone[:32]!r}")
        reporter["phone"] = phone
    email = fields.get("email")
    if email:
        if not _EMAIL.match(email):
            raise _bad(f"email must look like name@example.org; got {email[:64]!r}")
        reporter["email"] = email
    return reporter or None
