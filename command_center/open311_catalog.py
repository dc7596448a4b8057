"""The Open311 service catalog: which services (our incident categories) citizens' apps may
request, the attributes each asks for, and the names of the agencies cases are assigned to.

Loaded from a JSON file (infra/loaders/open311.py, LINKAGE_OPEN311_SERVICES); `parse_catalog`
checks it whole and names the first problem. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from domain.incident import Actor

Code = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
LISTS = ("singlevaluelist", "multivaluelist")


class CatalogError(ValueError):
    """A catalog file that is not what GeoReport v2 service definitions need."""


class Value(Struct, forbid_unknown_fields=True):
    key: Code
    name: Name


class Attribute(Struct, forbid_unknown_fields=True, kw_only=True):
    code: Code
    datatype: Datatype
    description: Name
    required: bool = False
    datatype_description: Annotated[str, Meta(max_length=200)] = ""
    order: int = 0
    values: list[Value] = msgspec.field(default_factory=list)


class Service(Struct, forbid_unknown_fields=True, kw_only=True):
    service_code: Code
    service_name: Name
    description: Annotated[str, Meta(max_length=1000)] = ""
    group: Annotated[str, Meta(max_length=100)] = ""
    keywords: list[Annotated[str, Meta(max_length=50)]] = msgspec.field(default_factory=list)
    severity: Literal["routine", "major"] = "routine"
    attributes: list[Attribute] = msgspec.field(default_factory=list)


class CatalogFile(Struct, forbid_unknown_fields=True):
    services: Annotated[list[Service], Meta(min_length=1, max_length=500)]
    agencies: dict[str, Name] = msgspec.field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    services: dict[str, Service]
    agencies: dict[str, str]

    def agency_name(self, assignee: dict[str, Any] | None) -> str | None:
        """The name of whoever a case is assigned to (the catalog's name, else its id)."""
        if not assignee:
            return None
        ident = str(assignee.get("id", ""))
        return self.agencies.get(ident, ident) or None


def parse_catalog(data: Any) -> Catalog:
    try:
        parsed = msgspec.convert(data, CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"Open311 service catalog: {exc}") from None
    services: dict[str, Service] = {}
    for service in parsed.services:
        if service.service_code in services:
            raise CatalogError(f"Open311 service catalog: service_code "
                               f"{service.service_code!r} is listed twice")
        codes = [a.code for a in service.attributes]
        if len(set(codes)) != len(codes):
            raise CatalogError(f"Open311 service {service.service_code!r}: an attribute code "
                               "is listed twice")
        for attribute in service.attributes:
            if (attribute.datatype in LISTS) != bool(attribute.values):
                raise CatalogError(
                    f"Open311 service {service.service_code!r}, attribute {attribute.code!r}: "
                    "list datatypes need values and only they may have them")
        services[service.service_code] = service
    return Catalog(services, dict(parsed.agencies))


@dataclass(frozen=True)
class Open311:
    """What the Open311 endpoints need besides the common services."""

    catalog: Catalog
    # an API key as presented -> the feed actor it names (None: unknown or revoked)
    verify_key: Callable[[str], Actor | None]
    max_results: int = 200  # service requests one GET answers with
    max_days: int = 90  # the widest start_date..end_date span, and the default window
