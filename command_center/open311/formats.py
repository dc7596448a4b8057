"""Open311 GeoReport v2 answers in JSON or XML, and its errors in its own error format.

XML follows the spec's documents: a root element per resource (`services`, `service_requests`,
`service_definition`, `discovery`, `errors`), one element per list item, UTF-8 with the XML
declaration. Booleans are `true`/`false`, nothing is an empty element.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import orjson
from starlette.responses import Response

FORMATS = ("json", "xml")
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
# The element of one item of each list the documents hold
ITEM_TAGS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint",
             "formats": "format", "services": "service", "service_requests": "request",
             "errors": "error"}


class Open311Error(Exception):
    """An answer in Open311's error format: `[{"code": status, "description": ...}]`."""

    def __init__(self, status: int, description: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        tag = ITEM_TAGS.get(element.tag, "item")
        for item in value:
            _fill(ET.SubElement(element, tag), item)
    elif value is not None:
        element.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    element = ET.Element(root)
    _fill(element, value)
    body: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def render(fmt: str, root: str, value: Any, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """`value` as JSON, or as XML under `root` (a list's items under ITEM_TAGS[root])."""
    if fmt == "xml":
        return Response(to_xml(root, value), status, headers, media_type=XML_TYPE)
    return Response(orjson.dumps(value), status, headers, media_type=JSON_TYPE)


def error_response(fmt: str, status: int, description: str,
                   headers: dict[str, str] | None = None) -> Response:
    return render(fmt if fmt in FORMATS else "json", "errors",
                  [{"code": status, "description": description}], status, headers)
