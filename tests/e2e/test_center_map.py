"""GET /api/centers/{id}/map: a center's grid outlines for the console's map, bounded and cached."""

from __future__ import annotations

from typing import Any

import httpx

from command_center.center_map import MAX_RING_POINTS, center_map
from domain.jurisdiction import parse_jurisdiction
from tests.conftest import RunningServer

TOWNSHIP = "130706001"


def test_a_township_map_draws_every_grid_under_it(server: RunningServer) -> None:
    embedded: Any = server.embedded
    expected = {g.id for g in embedded.jurisdiction.grids_under(TOWNSHIP)}
    response = httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/map", headers=server.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["center"] == TOWNSHIP and body["level"] == "township"
    assert {g["id"] for g in body["grids"]} == expected and len(expected) > 1
    x0, y0, x1, y1 = body["bbox"]
    for grid in body["grids"]:
        assert grid["name"] and grid["name_en"] and grid["community"] in body["communities"]
        assert grid["rings"] and all(len(ring) >= 3 for ring in grid["rings"])
        for lon, lat in (p for ring in grid["rings"] for p in ring):
            assert x0 <= lon <= x1 and y0 <= lat <= y1


def test_the_map_is_cached_by_etag(server: RunningServer) -> None:
    url = f"{server.url}/api/centers/{TOWNSHIP}/map"
    first = httpx.get(url, headers=server.headers)
    etag = first.headers["etag"]
    again = httpx.get(url, headers={**server.headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(url, headers=server.headers).content == first.content


def test_unknown_ids_and_grids_are_a_404_problem(server: RunningServer) -> None:
    for center in ("nowhere", "130706001001001"):
        response = httpx.get(f"{server.url}/api/centers/{center}/map", headers=server.headers)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "city, district or township" in response.json()["detail"]


def test_the_map_needs_credentials_and_the_center_in_the_officers_jurisdiction(
        server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/map").status_code == 401
    embedded: Any = server.embedded
    other = embedded.tokens.issue("officer-b", "township_officer", "130706200")
    headers = {"Authorization": f"Bearer {other}"}
    assert httpx.get(f"{server.url}/api/centers/{TOWNSHIP}/map", headers=headers).status_code == 403
    assert httpx.get(f"{server.url}/api/centers/130706200/map", headers=headers).status_code == 200


def _square_jurisdiction(points: int, width: float) -> Any:
    ring = [[115.0 + width * i / points, 40.0] for i in range(points)]
    ring += [[115.001, 40.001], [115.0, 40.001], ring[0]]
    features = [
        {"type": "Feature", "geometry": None,
         "properties": {"id": "c", "name": "市", "name_en": "City", "level": "city", "parent": None}},
        {"type": "Feature", "geometry": None,
         "properties": {"id": "d", "name": "区", "name_en": "D", "level": "district", "parent": "c"}},
        {"type": "Feature", "geometry": None,
         "properties": {"id": "t", "name": "镇", "name_en": "T", "level": "township", "parent": "d"}},
        {"type": "Feature", "geometry": None,
         "properties": {"id": "m", "name": "社区", "name_en": "M", "level": "community", "parent": "t"}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"id": "g", "name": "网格", "name_en": "G", "level": "grid", "parent": "m"}},
    ]
    return parse_jurisdiction({"type": "FeatureCollection", "features": features})


def test_a_detailed_outline_is_thinned_to_the_point_limit() -> None:
    (grid,) = center_map(_square_jurisdiction(5000, 0.1), "t")["grids"]
    (ring,) = grid["rings"]
    assert len(ring) == MAX_RING_POINTS
    # points closer than about a metre (5 decimals) merge: 5000 points over 0.001° are 101
    (ring,) = center_map(_square_jurisdiction(5000, 0.001), "t")["grids"][0]["rings"]
    assert len(ring) == 101 + 2
    # a small ring keeps every point but the closing one (SVG closes the path itself)
    (ring,) = center_map(_square_jurisdiction(10, 0.001), "t")["grids"][0]["rings"]
    assert len(ring) == 10 + 2
