"""The directory file: the bundled one is valid and names every dispatch target the demo uses;
a bad file is refused with an error naming the entry."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from domain.access import ROLES
from domain.directory import DirectoryError, parse_directory
from infra.demo.incidents import ASSIGNEES
from infra.loaders.directory import DEFAULT_DIRECTORY, load_directory
from infra.loaders.jurisdiction import load_jurisdiction

TREE = load_jurisdiction()
RAW: dict[str, Any] = tomllib.loads(DEFAULT_DIRECTORY.read_text())


def test_the_bundled_directory_is_valid_and_names_every_role() -> None:
    directory = load_directory(DEFAULT_DIRECTORY, TREE)
    assert set(directory.roles) == set(ROLES)
    assert {p.kind for p in directory.parties} == {
        "department", "property_company", "owners_committee", "volunteer_group"}
    assert all(p.name.zh and p.name.en for p in directory.parties)


def test_every_demo_dispatch_target_is_in_the_directory() -> None:
    directory = load_directory(DEFAULT_DIRECTORY, TREE)
    for assignee in ASSIGNEES:
        assert directory.party(assignee["kind"], assignee["id"]) is not None, assignee


def test_every_grid_has_a_grid_worker() -> None:
    directory = load_directory(DEFAULT_DIRECTORY, TREE)
    assert {w.grid for w in directory.grid_workers} == {g.id for g in TREE.grids()}


def broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["parties"][1].update(serves=["999"]),
     "party 'housing': serves '999', which is not a city, district or township"),
    (lambda d: d["parties"][1].update(serves=["130706001001001"]),
     "party 'housing': serves '130706001001001', which is not a city"),
    (lambda d: d["parties"][2].update(kind="company"),
     "party 'public_security': kind must be one of department, property_company"),
    (lambda d: d["parties"][0]["name"].pop("en"),
     "party 'urban_management': name must be {\"zh\": ..., \"en\": ...}"),
    (lambda d: d["parties"][0].update(categories=[]),
     "party 'urban_management': categories must be a list of 1 to"),
    (lambda d: d["parties"][0].update(phone="12345"),
     "party 'urban_management': unknown field 'phone'"),
    (lambda d: d["parties"].append(dict(d["parties"][0])),
     "party 'urban_management': listed twice as a department"),
    (lambda d: d["grid_workers"][3].update(grid="130706001"),
     "grid worker 'gw-130706001001004': grid '130706001' is not a grid"),
    (lambda d: d["grid_workers"][0].update(id=""),
     "grid worker #1: id must be a non-empty string"),
    (lambda d: d["grid_workers"].append(dict(d["grid_workers"][5])),
     "grid worker 'gw-130706001001006': listed twice"),
    (lambda d: d["roles"].pop("auditor"), "role 'auditor': has no name"),
    (lambda d: d.update(people=[]), "unknown section 'people'"),
])
def test_a_bad_entry_is_refused_by_name(change: Any, message: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        parse_directory(broken(change), TREE, ROLES)
    assert message in str(caught.value)


def test_the_loader_names_the_file_and_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "directory.toml"
    path.write_text(DEFAULT_DIRECTORY.read_text().replace('serves = ["130706002"]',
                                                          'serves = ["130799"]', 1))
    with pytest.raises(DirectoryError) as caught:
        load_directory(path, TREE)
    assert str(caught.value).startswith(f"{path}: party 'meikuang_property': serves '130799'")
    assert caught.value.entry == "party 'meikuang_property'"
    path.write_text("parties = [")
    with pytest.raises(DirectoryError, match="not valid TOML"):
        load_directory(path, TREE)


def test_the_bundled_sample_against_another_tree_keeps_what_fits() -> None:
    from domain.jurisdiction import parse_jurisdiction
    from tests.access_spec import small_tree

    other = parse_jurisdiction(small_tree())
    with pytest.raises(DirectoryError):
        load_directory(DEFAULT_DIRECTORY, other)
    lenient = load_directory(DEFAULT_DIRECTORY, other, strict=False)
    assert all(all(s in other for s in p.serves) for p in lenient.parties)
    assert all(w.grid in other for w in lenient.grid_workers)


def test_a_directory_shows_a_township_only_what_serves_it() -> None:
    directory = load_directory(DEFAULT_DIRECTORY, TREE)
    township = "130706001"
    visible = directory.visible(TREE, lambda c: c == township)
    ids = {p["id"] for p in visible["parties"]}
    assert {"urban_management", "street_office", "xinyuan_property", "chengzhen_owners"} <= ids
    assert "meikuang_property" not in ids and "huayuan_volunteers" not in ids
    grids = {g.id for g in TREE.grids_under(township)}
    assert {w["grid"] for w in visible["grid_workers"]} == grids
