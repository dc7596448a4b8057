"""A center's map: the outlines of its grids, from the jurisdiction polygons, for the console's SVG.

`GET /api/centers/{center_id}/map` answers the grids under a city, district or township center,
each with its name, its community and its outline, and the box around them all. No tile server:
the console draws the outlines itself. The answer is bounded whatever the file holds: coordinates
are rounded to `DECIMALS` places (about a metre), repeated points dropped, and a ring of more
than `MAX_RING_POINTS` points thinned to that many; a grid keeps at most `MAX_POLYGONS` polygons
and no holes (a map of open cases per grid does not need them). The jurisdiction is immutable, so
each center's answer is built once, kept as bytes, and served with an ETag.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.problems import Problem
from command_center.types import Services
from domain import access
from domain.jurisdiction import Jurisdiction, Unit

DECIMALS = 5
MAX_RING_POINTS = 256
MAX_POLYGONS = 16

Ring = list[list[float]]


def _ring(points: list[Any]) -> Ring:
    """An outer ring rounded, without repeated points, thinned to at most MAX_RING_POINTS."""
    ring: Ring = []
    for p in points:
        xy = [round(float(p[0]), DECIMALS), round(float(p[1]), DECIMALS)]
        if not ring or ring[-1] != xy:
            ring.append(xy)
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring.pop()  # SVG closes the path itself
    if len(ring) > MAX_RING_POINTS:
        step = len(ring) / MAX_RING_POINTS
        ring = [ring[int(i * step)] for i in range(MAX_RING_POINTS)]
    return ring


def _outline(unit: Unit) -> list[Ring]:
    geometry = unit.geometry
    if geometry is None:
        return []
    coords = geometry["coordinates"]
    polygons = [coords] if geometry["type"] == "Polygon" else coords
    return [r for r in (_ring(poly[0]) for poly in polygons[:MAX_POLYGONS]) if len(r) >= 3]


def center_map(jurisdiction: Jurisdiction, center: str) -> dict[str, Any]:
    """The map of one center: its grids' outlines and names, and their bounding box."""
    grids: list[dict[str, Any]] = []
    xs: list[float] = []
    ys: list[float] = []
    for grid in jurisdiction.grids_under(center):
        rings = _outline(grid)
        for ring in rings:
            xs += [p[0] for p in ring]
            ys += [p[1] for p in ring]
        grids.append({"id": grid.id, "name": grid.name, "name_en": grid.name_en,
                      "community": grid.parent, "rings": rings})
    unit = jurisdiction.unit(center)
    communities = {u.id: {"name": u.name, "name_en": u.name_en}
                   for u in (jurisdiction.get(str(g["community"] or "")) for g in grids)
                   if u is not None}
    return {"center": center, "name": unit.name, "name_en": unit.name_en, "level": unit.level,
            "bbox": [min(xs), min(ys), max(xs), max(ys)] if xs else None,
            "grids": grids, "communities": communities}


class CenterMaps:
    """Each center's map, encoded once (the jurisdiction never changes while the app runs)."""

    def __init__(self, jurisdiction: Jurisdiction) -> None:
        self._jurisdiction = jurisdiction
        self._encoded: dict[str, tuple[bytes, str]] = {}

    def get(self, center: str) -> tuple[bytes, str]:
        """The map of a center as JSON bytes, and its ETag."""
        found = self._encoded.get(center)
        if found is None:
            body = orjson.dumps(center_map(self._jurisdiction, center))
            found = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
            # At most one entry per center of the tree: the cache is bounded by the file.
            self._encoded[center] = found
        return found


async def get_center_map(request: Request) -> Response:
    svc: Services = request.app.state.services
    maps: CenterMaps = request.app.state.center_maps
    actor = svc.authenticate(request)
    center = request.path_params["center_id"]
    if center not in svc.jurisdiction or not svc.jurisdiction.is_center(center):
        raise Problem(404, f"center {center!r} not found; expected a city, district or township "
                      "id of GET /api/centers")
    svc.authorize(actor, access.VIEW, svc.jurisdiction.centers_for(center))
    body, etag = maps.get(center)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


routes = [Route("/api/centers/{center_id}/map", get_center_map, methods=["GET"])]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add `GET /api/centers/{center_id}/map` to the /openapi.json document."""
    problem = {"$ref": "#/components/responses/Problem"}
    doc["paths"].setdefault("/api/centers/{center_id}/map", {})["get"] = {
        "summary": "The outlines of a center's grids, for the console's map",
        "operationId": "getCenterMap",
        "parameters": [{"name": "center_id", "in": "path", "required": True,
                        "schema": {"type": "string"},
                        "description": "a city, district or township id"}],
        "responses": {
            "200": {"description": "{center, name, name_en, level, bbox: [min lon, min lat, "
                    "max lon, max lat] or null, grids: [{id, name, name_en, community, rings: "
                    "[[[lon, lat], ...]]}], communities: {id: {name, name_en}}}",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "304": {"description": "not modified (If-None-Match matched the ETag)"},
            "401": problem, "403": problem, "404": problem,
        },
    }
