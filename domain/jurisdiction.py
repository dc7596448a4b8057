"""The jurisdiction tree: city → district/county → township/street → community/village → grid.

Pure code: no I/O. ``parse_jurisdiction`` takes an already-decoded GeoJSON FeatureCollection
(a ``dict``), validates it thoroughly and returns an immutable :class:`Jurisdiction`.

Every feature describes one unit. Its ``properties`` carry ``id`` (or the feature's top-level
``id``; ``properties.id`` wins), ``name``, ``name_en``, ``level`` (one of :data:`LEVELS`) and
``parent`` (the parent unit's id; absent or null only for the city). Grids must have a Polygon or
MultiPolygon geometry; other units may have a null geometry or a valid polygon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

LEVELS: tuple[str, ...] = ("city", "district", "township", "community", "grid")
CENTER_LEVELS: tuple[str, ...] = ("city", "district", "township")

_LEVEL_INDEX: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}
_POLYGON_TYPES = ("Polygon", "MultiPolygon")


class JurisdictionError(ValueError):
    """A jurisdiction file is malformed. ``feature`` names the offending feature (its id, or
    ``"#<index>"`` if it has no usable id), or is None for a problem with the whole file."""

    feature: str | None

    def __init__(self, message: str, feature: str | None = None) -> None:
        super().__init__(message)
        self.feature = feature


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    name: str
    name_en: str
    level: str
    parent: str | None
    geometry: dict[str, Any] | None = field(default=None, hash=False, repr=False)


# A polygon as plain float rings: outer ring first, then holes.
_Ring = list[tuple[float, float]]
_Polygon = list[_Ring]


@dataclass(frozen=True, slots=True)
class _GridShape:
    grid_id: str
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    polygons: tuple[_Polygon, ...]


class Jurisdiction:
    """An immutable, validated jurisdiction tree. Build it with :func:`parse_jurisdiction`."""

    root: Unit

    def __init__(self, units: Sequence[Unit]) -> None:
        # Assumes ``units`` was validated by parse_jurisdiction (file order preserved).
        self._units: dict[str, Unit] = {u.id: u for u in units}
        self._children: dict[str, list[Unit]] = {u.id: [] for u in units}
        root: Unit | None = None
        for u in units:
            if u.parent is None:
                root = u
            else:
                self._children[u.parent].append(u)
        if root is None:
            raise JurisdictionError("jurisdiction has no root unit; expected exactly one city")
        self.root = root
        self._shapes: list[_GridShape] = [
            _shape_of(u.id, u.geometry)
            for u in self._tree_order()
            if u.level == "grid" and u.geometry is not None
        ]

    # -- lookup ------------------------------------------------------------------------------

    def unit(self, unit_id: str) -> Unit:
        try:
            return self._units[unit_id]
        except KeyError:
            raise KeyError(f"unknown jurisdiction unit {unit_id!r}") from None

    def __contains__(self, unit_id: object) -> bool:
        return isinstance(unit_id, str) and unit_id in self._units

    def __len__(self) -> int:
        return len(self._units)

    def get(self, unit_id: str) -> Unit | None:
        return self._units.get(unit_id)

    def units(self) -> Iterable[Unit]:
        return list(self._units.values())

    def children(self, unit_id: str) -> list[Unit]:
        self.unit(unit_id)
        return list(self._children[unit_id])

    def ancestors(self, unit_id: str) -> list[Unit]:
        """From the unit's parent up to the root (empty for the root)."""
        result: list[Unit] = []
        parent = self.unit(unit_id).parent
        while parent is not None:
            p = self._units[parent]
            result.append(p)
            parent = p.parent
        return result

    # -- centers -----------------------------------------------------------------------------

    def is_center(self, unit_id: str) -> bool:
        return self.unit(unit_id).level in CENTER_LEVELS

    def centers_for(self, unit_id: str) -> tuple[str, ...]:
        """Ids of the center-level units at or above this unit, nearest first."""
        chain = [self.unit(unit_id), *self.ancestors(unit_id)]
        return tuple(u.id for u in chain if u.level in CENTER_LEVELS)

    def centers(self) -> list[Unit]:
        """All center units in tree order (city, then each district followed by its townships)."""
        return [u for u in self._tree_order() if u.level in CENTER_LEVELS]

    def is_within(self, unit_id: str, ancestor_id: str) -> bool:
        """True if ``unit_id`` is ``ancestor_id`` or lies beneath it. Unknown ids → False."""
        if unit_id not in self._units or ancestor_id not in self._units:
            return False
        if unit_id == ancestor_id:
            return True
        return any(a.id == ancestor_id for a in self.ancestors(unit_id))

    # -- grids -------------------------------------------------------------------------------

    def grids(self) -> list[Unit]:
        return [u for u in self._tree_order() if u.level == "grid"]

    def grids_under(self, unit_id: str) -> list[Unit]:
        return [u for u in self._tree_order(self.unit(unit_id)) if u.level == "grid"]

    def tree(self, max_level: str = "grid") -> dict[str, Any]:
        """Nested ``{"id","name","name_en","level","children":[...]}`` from the root, children in
        file order; units at ``max_level`` get an empty children list."""
        if max_level not in _LEVEL_INDEX:
            raise ValueError(f"unknown level {max_level!r}; expected one of {', '.join(LEVELS)}")
        limit = _LEVEL_INDEX[max_level]

        def node(u: Unit) -> dict[str, Any]:
            kids = [] if _LEVEL_INDEX[u.level] >= limit else self._children[u.id]
            return {
                "id": u.id,
                "name": u.name,
                "name_en": u.name_en,
                "level": u.level,
                "children": [node(c) for c in kids],
            }

        return node(self.root)

    def locate(self, lon: float, lat: float) -> str | None:
        """Id of the grid whose polygon contains the point, else None (first grid in tree order
        wins if polygons overlap or the point lies on a shared edge)."""
        for shape in self._shapes:
            x0, y0, x1, y1 = shape.bbox
            if not (x0 <= lon <= x1 and y0 <= lat <= y1):
                continue
            if any(_in_polygon(lon, lat, poly) for poly in shape.polygons):
                return shape.grid_id
        return None

    # -- internals ---------------------------------------------------------------------------

    def _tree_order(self, start: Unit | None = None) -> Iterator[Unit]:
        stack = [start if start is not None else self.root]
        while stack:
            u = stack.pop()
            yield u
            stack.extend(reversed(self._children[u.id]))


# -- geometry helpers --------------------------------------------------------------------------


def _polygons_of(geometry: dict[str, Any]) -> list[_Polygon]:
    coords = geometry["coordinates"]
    raw = [coords] if geometry["type"] == "Polygon" else coords
    return [[[(float(p[0]), float(p[1])) for p in ring] for ring in poly] for poly in raw]


def _shape_of(grid_id: str, geometry: dict[str, Any]) -> _GridShape:
    polygons = _polygons_of(geometry)
    xs = [p[0] for poly in polygons for p in poly[0]]
    ys = [p[1] for poly in polygons for p in poly[0]]
    return _GridShape(grid_id, (min(xs), min(ys), max(xs), max(ys)), tuple(polygons))


def _in_ring(x: float, y: float, ring: _Ring) -> bool:
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _in_polygon(x: float, y: float, polygon: _Polygon) -> bool:
    if not polygon or not _in_ring(x, y, polygon[0]):
        return False
    return not any(_in_ring(x, y, hole) for hole in polygon[1:])


# -- parsing and validation --------------------------------------------------------------------


def _fail(feature: str | None, problem: str, expected: str) -> JurisdictionError:
    where = f"feature {feature}" if feature is not None else "jurisdiction"
    return JurisdictionError(f"{where}: {problem}; expected {expected}", feature)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_ring(label: str, where: str, ring: object) -> None:
    if not isinstance(ring, list):
        raise _fail(label, f"geometry {where} is not a list of positions", "a linear ring")
    if len(ring) < 4:
        raise _fail(
            label,
            f"geometry {where} has {len(ring)} positions",
            "a linear ring of at least 4 positions",
        )
    for k, pos in enumerate(ring):
        if not isinstance(pos, list) or len(pos) < 2:
            raise _fail(label, f"geometry {where} position {k} is {pos!r}", "[lon, lat]")
        if not all(_is_number(c) for c in pos):
            raise _fail(
                label,
                f"geometry {where} position {k} has non-numeric coordinates {pos!r}",
                "finite numbers [lon, lat]",
            )
        lon, lat = pos[0], pos[1]
        if not -180 <= lon <= 180:
            raise _fail(
                label, f"geometry {where} position {k} lon {lon} out of range", "lon in [-180, 180]"
            )
        if not -90 <= lat <= 90:
            raise _fail(
                label, f"geometry {where} position {k} lat {lat} out of range", "lat in [-90, 90]"
            )
    if ring[0][:2] != ring[-1][:2]:
        raise _fail(
            label,
            f"geometry {where} ring is not closed (first {ring[0]!r} != last {ring[-1]!r})",
            "the first and last positions of a ring to be equal",
        )


def _check_polygon(label: str, where: str, poly: object) -> None:
    if not isinstance(poly, list) or not poly:
        raise _fail(label, f"geometry {where} has no rings", "a non-empty list of linear rings")
    for r, ring in enumerate(poly):
        _check_ring(label, f"{where}ring {r}", ring)


def _check_geometry(label: str, level: str, geometry: object) -> dict[str, Any] | None:
    if geometry is None:
        if level == "grid":
            raise _fail(label, "grid has no geometry", "a Polygon or MultiPolygon geometry")
        return None
    if not isinstance(geometry, dict):
        raise _fail(label, f"geometry is {type(geometry).__name__}", "a GeoJSON geometry object")
    gtype = geometry.get("type")
    if gtype not in _POLYGON_TYPES:
        raise _fail(label, f"wrong geometry type {gtype!r}", "Polygon or MultiPolygon")
    coords = geometry.get("coordinates")
    if gtype == "Polygon":
        _check_polygon(label, "", coords)
    else:
        if not isinstance(coords, list) or not coords:
            raise _fail(label, "MultiPolygon has no polygons", "a non-empty list of polygons")
        for p, poly in enumerate(coords):
            _check_polygon(label, f"polygon {p} ", poly)
    return geometry


def _string_prop(label: str, props: dict[str, Any], key: str) -> str:
    value = props.get(key)
    if value is None:
        raise _fail(label, f"missing property {key!r}", f"a non-empty string {key!r}")
    if not isinstance(value, str) or not value:
        raise _fail(label, f"property {key!r} is {value!r}", f"a non-empty string {key!r}")
    return value


def _parse_feature(index: int, feature: object) -> Unit:
    label = f"#{index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise _fail(label, "is not a GeoJSON Feature object", 'an object with "type": "Feature"')
    props = feature.get("properties")
    if not isinstance(props, dict):
        raise _fail(label, "has no properties object", "a properties object")
    raw_id = props["id"] if props.get("id") is not None else feature.get("id")
    if raw_id is None:
        raise _fail(
            label, "missing property 'id'", "a string id in properties.id or the feature id"
        )
    if not isinstance(raw_id, str) or not raw_id:
        raise _fail(label, f"id is {raw_id!r}", "a non-empty string id")
    label = raw_id
    name = _string_prop(label, props, "name")
    name_en = _string_prop(label, props, "name_en")
    level = _string_prop(label, props, "level")
    if level not in _LEVEL_INDEX:
        raise _fail(label, f"unknown level {level!r}", f"one of {', '.join(LEVELS)}")
    parent = props.get("parent")
    if parent is not None and (not isinstance(parent, str) or not parent):
        raise _fail(label, f"parent is {parent!r}", "a unit id string, or null for the city")
    geometry = _check_geometry(label, level, feature.get("geometry"))
    return Unit(raw_id, name, name_en, level, parent, geometry)


def parse_jurisdiction(data: Any) -> Jurisdiction:
    """Validate a decoded GeoJSON FeatureCollection and build the jurisdiction tree.

    Raises :class:`JurisdictionError` naming the offending feature and the problem."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise _fail(
            None, "not a GeoJSON FeatureCollection", 'an object with "type": "FeatureCollection"'
        )
    features = data.get("features")
    if not isinstance(features, list):
        raise _fail(None, "'features' is not a list", "a list of Feature objects")

    units: list[Unit] = []
    by_id: dict[str, Unit] = {}
    for index, feature in enumerate(features):
        u = _parse_feature(index, feature)
        if u.id in by_id:
            raise _fail(u.id, f"duplicate id {u.id!r} (feature #{index})", "unique unit ids")
        by_id[u.id] = u
        units.append(u)

    for u in units:
        if u.parent is not None and u.parent not in by_id:
            raise _fail(u.id, f"unknown parent {u.parent!r}", "the id of another unit in the file")

    roots = [u for u in units if u.parent is None]
    for u in roots:
        if u.level != "city":
            raise _fail(u.id, f"{u.level} has no parent", "only the city to be without a parent")
    if not roots:
        raise _fail(None, "no root unit (no unit without a parent)", "exactly one city as root")
    if len(roots) > 1:
        raise _fail(
            roots[1].id,
            f"second root city (first is {roots[0].id!r})",
            "exactly one city without a parent",
        )

    for u in units:
        seen = {u.id}
        parent = u.parent
        while parent is not None:
            if parent in seen:
                raise _fail(u.id, f"cycle in parent links through {parent!r}", "a tree")
            seen.add(parent)
            parent = by_id[parent].parent

    for u in units:
        if u.parent is None:
            continue
        p = by_id[u.parent]
        want = _LEVEL_INDEX[p.level] + 1
        if _LEVEL_INDEX[u.level] != want:
            expected = LEVELS[want] if want < len(LEVELS) else "no children"
            raise _fail(
                u.id,
                f"wrong level order: {u.level} under {p.level} {p.id!r}",
                f"a {expected} under a {p.level}" if want < len(LEVELS) else expected,
            )

    return Jurisdiction(units)
