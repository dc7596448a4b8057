from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from domain.jurisdiction import (
    CENTER_LEVELS,
    LEVELS,
    Jurisdiction,
    JurisdictionError,
    parse_jurisdiction,
)
from infra.loaders.jurisdiction import DEFAULT_JURISDICTION, load_jurisdiction

CITY = "130700"
XIAHUAYUAN = "130706"
CHENGZHEN = "130706001"


@pytest.fixture(scope="module")
def sample() -> Jurisdiction:
    return load_jurisdiction(DEFAULT_JURISDICTION)


def _square(x: float, y: float, size: float = 1.0) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]],
    }


def _feature(
    uid: str, level: str, parent: str | None, geometry: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "id": uid,
            "name": f"名{uid}",
            "name_en": f"Unit {uid}",
            "level": level,
            "parent": parent,
        },
        "geometry": geometry,
    }


def _minimal() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            _feature("C", "city", None),
            _feature("D", "district", "C"),
            _feature("T", "township", "D"),
            _feature("M", "community", "T"),
            _feature("G1", "grid", "M", _square(10, 10)),
            _feature("G2", "grid", "M", _square(11, 10)),
        ],
    }


def _refused(data: Any, *fragments: str) -> JurisdictionError:
    with pytest.raises(JurisdictionError) as info:
        parse_jurisdiction(data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return info.value


# -- the sample ----------------------------------------------------------------------------------


def test_sample_loads_with_zhangjiakou_as_root(sample: Jurisdiction) -> None:
    assert sample.root.id == CITY
    assert sample.root.name == "张家口市"
    assert sample.root.level == "city"
    assert sample.root.parent is None


def test_sample_has_sixteen_districts_with_real_codes(sample: Jurisdiction) -> None:
    districts = sample.children(CITY)
    assert len(districts) == 16
    assert {d.level for d in districts} == {"district"}
    assert sample.unit("130732").name == "赤城县"
    assert sample.unit("130702").name_en == "Qiaodong District"
    assert sample.unit("130722").name_en == "Zhangbei County"


def test_sample_has_six_townships_under_xiahuayuan(sample: Jurisdiction) -> None:
    townships = sample.children(XIAHUAYUAN)
    assert [t.name for t in townships] == [
        "城镇街道",
        "煤矿街道",
        "花园乡",
        "辛庄子乡",
        "定方水乡",
        "段家堡乡",
    ]
    assert townships[0].id == CHENGZHEN
    for t in townships:
        assert 3 <= len(sample.children(t.id)) <= 5


def test_sample_has_about_two_hundred_grids_all_under_xiahuayuan(sample: Jurisdiction) -> None:
    grids = sample.grids()
    assert 180 <= len(grids) <= 220
    assert sample.grids_under(XIAHUAYUAN) == grids
    assert sample.grids_under("130702") == []


def test_every_sample_grid_reports_township_district_and_city_centers(
    sample: Jurisdiction,
) -> None:
    for grid in sample.grids():
        community = sample.unit(grid.parent or "")
        township = community.parent
        assert sample.centers_for(grid.id) == (township, XIAHUAYUAN, CITY)


def test_sample_file_is_small_and_regenerated_deterministically(tmp_path: Path) -> None:
    import runpy

    assert DEFAULT_JURISDICTION.stat().st_size < 300_000
    script = DEFAULT_JURISDICTION.parent / "generate_sample.py"
    module = runpy.run_path(str(script))
    module["main"].__globals__["OUT"] = tmp_path / "out.geojson"
    module["main"]()
    assert (tmp_path / "out.geojson").read_bytes() == DEFAULT_JURISDICTION.read_bytes()


# -- queries -------------------------------------------------------------------------------------


def test_unit_lookup_raises_key_error_for_unknown_ids(sample: Jurisdiction) -> None:
    assert "130706" in sample
    assert "nope" not in sample
    assert 130706 not in sample
    assert sample.get("nope") is None
    with pytest.raises(KeyError):
        sample.unit("nope")


def test_ancestors_run_from_parent_up_to_the_root(sample: Jurisdiction) -> None:
    grid = sample.grids()[0]
    levels = [u.level for u in sample.ancestors(grid.id)]
    assert levels == ["community", "township", "district", "city"]
    assert sample.ancestors(CITY) == []


def test_centers_are_city_then_each_district_followed_by_its_townships(
    sample: Jurisdiction,
) -> None:
    centers = sample.centers()
    assert centers[0].id == CITY
    assert len(centers) == 1 + 16 + 6
    ids = [c.id for c in centers]
    at = ids.index(XIAHUAYUAN)
    assert ids[at + 1 : at + 7] == [t.id for t in sample.children(XIAHUAYUAN)]
    assert all(sample.is_center(c.id) for c in centers)
    assert {c.level for c in centers} == set(CENTER_LEVELS)
    assert not sample.is_center(sample.grids()[0].id)


def test_centers_for_a_township_and_the_city(sample: Jurisdiction) -> None:
    assert sample.centers_for(CHENGZHEN) == (CHENGZHEN, XIAHUAYUAN, CITY)
    assert sample.centers_for(CITY) == (CITY,)


def test_is_within_covers_self_and_ancestors_only(sample: Jurisdiction) -> None:
    grid = sample.grids()[0].id
    assert sample.is_within(grid, grid)
    assert sample.is_within(grid, XIAHUAYUAN)
    assert sample.is_within(grid, CITY)
    assert not sample.is_within(XIAHUAYUAN, grid)
    assert not sample.is_within(grid, "130702")


def test_tree_nests_units_in_file_order(sample: Jurisdiction) -> None:
    tree = sample.tree()
    assert set(tree) == {"id", "name", "name_en", "level", "children"}
    assert tree["id"] == CITY
    assert [d["id"] for d in tree["children"]] == [d.id for d in sample.children(CITY)]
    xhy = next(d for d in tree["children"] if d["id"] == XIAHUAYUAN)
    township = xhy["children"][0]
    community = township["children"][0]
    grid = community["children"][0]
    assert (township["level"], community["level"], grid["level"]) == (
        "township",
        "community",
        "grid",
    )
    assert grid["children"] == []


def test_tree_stops_at_max_level(sample: Jurisdiction) -> None:
    tree = sample.tree(max_level="township")
    xhy = next(d for d in tree["children"] if d["id"] == XIAHUAYUAN)
    assert len(xhy["children"]) == 6
    assert all(t["children"] == [] for t in xhy["children"])
    assert sample.tree("city")["children"] == []
    with pytest.raises(ValueError):
        sample.tree("planet")


def test_locate_finds_the_grid_at_each_grid_centre(sample: Jurisdiction) -> None:
    for grid in sample.grids():
        assert grid.geometry is not None
        ring = grid.geometry["coordinates"][0]
        xs = [p[0] for p in ring]
        ys = [p[1] for p in ring]
        lon = (min(xs) + max(xs)) / 2
        lat = (min(ys) + max(ys)) / 2
        assert sample.locate(lon, lat) == grid.id


def test_locate_returns_none_far_away(sample: Jurisdiction) -> None:
    assert sample.locate(0.0, 0.0) is None
    assert sample.locate(116.40, 39.90) is None  # Beijing


def test_locate_respects_holes_and_multipolygons() -> None:
    data = _minimal()
    data["features"][4]["geometry"] = {
        "type": "Polygon",
        "coordinates": [
            [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
            [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]],
        ],
    }
    data["features"][5]["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [
            _square(20, 20)["coordinates"],
            _square(30, 30)["coordinates"],
        ],
    }
    j = parse_jurisdiction(data)
    assert j.locate(1, 1) == "G1"
    assert j.locate(5, 5) is None
    assert j.locate(30.5, 30.5) == "G2"
    assert j.locate(20.5, 20.5) == "G2"


def test_minimal_tree_parses_and_levels_are_in_order() -> None:
    j = parse_jurisdiction(_minimal())
    assert [u.id for u in j.units()] == ["C", "D", "T", "M", "G1", "G2"]
    assert LEVELS == ("city", "district", "township", "community", "grid")
    assert [g.id for g in j.grids_under("T")] == ["G1", "G2"]


def test_feature_id_may_come_from_top_level_id_and_properties_win() -> None:
    data = _minimal()
    del data["features"][5]["properties"]["id"]
    data["features"][5]["id"] = "G9"
    data["features"][4]["id"] = "ignored"
    j = parse_jurisdiction(data)
    assert "G9" in j
    assert "G1" in j
    assert "ignored" not in j


# -- broken files --------------------------------------------------------------------------------


def test_refuses_a_document_that_is_not_a_feature_collection() -> None:
    err = _refused({"type": "Feature"}, "FeatureCollection")
    assert err.feature is None
    _refused([], "FeatureCollection")


def test_refuses_features_that_are_not_a_list() -> None:
    _refused({"type": "FeatureCollection", "features": {}}, "features", "list")


def test_refuses_a_feature_that_is_not_a_feature_object() -> None:
    data = _minimal()
    data["features"][2] = {"type": "Point"}
    err = _refused(data, "#2", "Feature")
    assert err.feature == "#2"


@pytest.mark.parametrize("key", ["name", "name_en", "level"])
def test_refuses_a_feature_missing_a_required_property(key: str) -> None:
    data = _minimal()
    del data["features"][3]["properties"][key]
    err = _refused(data, "M", "missing", key)
    assert err.feature == "M"


def test_refuses_a_feature_without_any_id_naming_its_index() -> None:
    data = _minimal()
    del data["features"][3]["properties"]["id"]
    err = _refused(data, "#3", "missing", "id")
    assert err.feature == "#3"


@pytest.mark.parametrize("key", ["name", "name_en", "level"])
def test_refuses_a_non_string_property(key: str) -> None:
    data = _minimal()
    data["features"][3]["properties"][key] = 7
    _refused(data, "M", key, "string")


def test_refuses_a_non_string_id() -> None:
    data = _minimal()
    data["features"][3]["properties"]["id"] = 42
    _refused(data, "#3", "id", "string")


def test_refuses_an_unknown_level() -> None:
    data = _minimal()
    data["features"][3]["properties"]["level"] = "neighbourhood"
    _refused(data, "M", "unknown level", "neighbourhood")


def test_refuses_a_duplicate_id() -> None:
    data = _minimal()
    data["features"][5]["properties"]["id"] = "G1"
    err = _refused(data, "G1", "duplicate id")
    assert err.feature == "G1"


def test_refuses_an_unknown_parent() -> None:
    data = _minimal()
    data["features"][3]["properties"]["parent"] = "ghost"
    _refused(data, "M", "unknown parent", "ghost")


def test_refuses_a_non_city_without_parent() -> None:
    data = _minimal()
    data["features"][1]["properties"]["parent"] = None
    _refused(data, "D", "district has no parent")


def test_refuses_two_root_cities() -> None:
    data = _minimal()
    data["features"].append(_feature("C2", "city", None))
    _refused(data, "C2", "root")


def test_refuses_a_file_without_a_root() -> None:
    data = _minimal()
    data["features"][0]["properties"]["parent"] = "G1"
    _refused(data, "no root")


def test_refuses_a_cycle_in_parent_links() -> None:
    data = _minimal()
    data["features"] += [_feature("X", "township", "Y"), _feature("Y", "township", "X")]
    err = _refused(data, "cycle")
    assert err.feature in {"X", "Y"}
    assert err.feature in str(err)


def test_refuses_a_township_directly_under_the_city() -> None:
    data = _minimal()
    data["features"][2]["properties"]["parent"] = "C"
    _refused(data, "T", "wrong level order", "district")


def test_refuses_a_grid_directly_under_a_township() -> None:
    data = _minimal()
    data["features"][4]["properties"]["parent"] = "T"
    _refused(data, "G1", "wrong level order", "community")


def test_refuses_a_grid_without_geometry() -> None:
    data = _minimal()
    data["features"][4]["geometry"] = None
    _refused(data, "G1", "grid has no geometry", "Polygon")


def test_refuses_a_wrong_geometry_type() -> None:
    data = _minimal()
    data["features"][4]["geometry"] = {"type": "Point", "coordinates": [1, 2]}
    _refused(data, "G1", "wrong geometry type", "Point")


def test_refuses_a_ring_with_fewer_than_four_positions() -> None:
    data = _minimal()
    data["features"][4]["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [1, 0], [0, 0]]],
    }
    _refused(data, "G1", "3 positions", "at least 4")


def test_refuses_a_ring_that_is_not_closed() -> None:
    data = _minimal()
    data["features"][4]["geometry"]["coordinates"][0][-1] = [10, 10.5]
    _refused(data, "G1", "not closed")


def test_refuses_non_numeric_coordinates() -> None:
    data = _minimal()
    data["features"][4]["geometry"]["coordinates"][0][1] = ["11", 10]
    _refused(data, "G1", "non-numeric")


def test_refuses_longitude_out_of_range() -> None:
    data = _minimal()
    ring = data["features"][4]["geometry"]["coordinates"][0]
    ring[0] = ring[-1] = [181.0, 10]
    _refused(data, "G1", "lon 181.0 out of range", "[-180, 180]")


def test_refuses_latitude_out_of_range() -> None:
    data = _minimal()
    ring = data["features"][4]["geometry"]["coordinates"][0]
    ring[1] = [11, -91]
    _refused(data, "G1", "lat -91 out of range", "[-90, 90]")


def test_refuses_bad_geometry_on_a_non_grid_unit_but_accepts_a_valid_one() -> None:
    data = _minimal()
    data["features"][2]["geometry"] = _square(0, 0, 50)
    parse_jurisdiction(copy.deepcopy(data))
    data["features"][2]["geometry"] = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    _refused(data, "T", "wrong geometry type")


# -- the file loader -----------------------------------------------------------------------------


def test_load_refuses_malformed_json_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_bytes(b'{"type": "FeatureCollection", "features": [')
    with pytest.raises(JurisdictionError) as info:
        load_jurisdiction(path)
    assert str(path) in str(info.value)
    assert "malformed JSON" in str(info.value)


def test_load_refuses_a_missing_file_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.geojson"
    with pytest.raises(JurisdictionError) as info:
        load_jurisdiction(str(path))
    assert str(path) in str(info.value)
    assert "cannot read" in str(info.value)


def test_load_reports_validation_errors_with_path_and_feature(tmp_path: Path) -> None:
    path = tmp_path / "dup.geojson"
    path.write_text(
        '{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
        '{"id":"X","name":"x","name_en":"x","level":"district","parent":null},'
        '"geometry":null}]}',
        encoding="utf-8",
    )
    with pytest.raises(JurisdictionError) as info:
        load_jurisdiction(path)
    assert str(path) in str(info.value)
    assert info.value.feature == "X"
