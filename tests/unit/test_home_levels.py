"""Where each role may be homed (issue #11 row 5): the policy, and tokens issued and verified."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from domain.access import ROLES, AccessPolicy, home_problem
from domain.incident import Actor
from domain.jurisdiction import parse_jurisdiction
from infra.security.tokens import TokenError, Tokens
from infra.settings import Settings
from tests.access_spec import small_tree

TREE = parse_jurisdiction(small_tree())
UNIT_AT = {"city": "C", "district": "D1", "township": "T1", "community": "M1", "grid": "G1",
           None: None}
ALLOWED = {  # written from the rule, independently of domain/access.py
    "city_officer": {"city"},
    "district_officer": {"district"},
    "township_officer": {"township"},
    "grid_worker": {"grid", "township"},
    "department": {None, "city", "district", "township"},
    "auditor": {None, "city", "district", "township"},
    "admin": {None, "city", "district", "township"},
    "feed": {None, "city", "district", "township", "community", "grid"},
}
CASES = [(role, level) for role in ROLES for level in UNIT_AT]


@pytest.mark.parametrize(("role", "level"), CASES)
def test_each_role_is_homed_only_at_its_levels(role: str, level: str | None) -> None:
    problem = home_problem(role, UNIT_AT[level], TREE)
    assert (problem is None) == (level in ALLOWED[role]), problem
    if problem is not None and level is not None:
        assert f"{UNIT_AT[level]} is a {level}" in problem and role in problem


def test_a_grid_worker_homed_at_the_city_is_refused_by_the_policy_too() -> None:
    actor: Actor = {"user": "gw", "role": "grid_worker", "center": "C"}
    decision = AccessPolicy(TREE).decide(actor, "incident.read", TREE.centers_for("G2"))
    assert not decision.allowed
    assert "grid_worker's home center must be a grid or township; C is a city" in decision.reason


def test_an_unknown_center_names_the_tree() -> None:
    assert home_problem("township_officer", "nowhere", TREE) == (
        "center 'nowhere' is not in the jurisdiction tree")


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    return Tokens(Settings().with_(data_dir=tmp_path), TREE)


@pytest.mark.parametrize(("role", "level"), [c for c in CASES if c[1] not in ALLOWED[c[0]]])
def test_a_token_at_the_wrong_level_is_neither_issued_nor_accepted(
    tokens: Tokens, role: str, level: str | None,
) -> None:
    center = UNIT_AT[level]
    with pytest.raises(ValueError, match="home center"):
        tokens.issue("u", role, center, department="water")
    assert tokens.secret is not None
    forged = jwt.encode({"sub": "u", "role": role, "center": center, "aud": tokens.audience,
                         "iss": tokens.issuer, "exp": 4_000_000_000}, tokens.secret, "HS256")
    with pytest.raises(TokenError, match=r"token refused: .*home center"):
        tokens.verify(forged)


def test_a_token_at_the_right_level_is_issued_and_accepted(tokens: Tokens) -> None:
    actor, _ = tokens.verify(tokens.issue("gw", "grid_worker", "G1"))
    assert actor == {"user": "gw", "role": "grid_worker", "center": "G1"}
    actor, _ = tokens.verify(tokens.issue("gw2", "grid_worker", "T1"))
    assert actor["center"] == "T1"
