"""The access policy, cell by cell: role x relation x permission (pure, no services)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import access
from domain.access import AccessPolicy
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction, parse_jurisdiction
from tests.access_spec import (
    GRID_OF,
    HANDLER_ACTIONS,
    OTHER_ACTIONS,
    RELATIONS,
    UNITS,
    expected,
    group_of,
    small_tree,
)


def _tree() -> Jurisdiction:
    return parse_jurisdiction(small_tree())


TREE = _tree()
POLICY = AccessPolicy(TREE)
DEPARTMENT = {"kind": "department", "id": "water"}

ACTORS: dict[str, Actor] = {
    "city_officer": {"user": "c", "role": "city_officer", "center": "C"},
    "district_officer": {"user": "d", "role": "district_officer", "center": "D1"},
    "township_officer": {"user": "t", "role": "township_officer", "center": "T1"},
    "grid_worker": {"user": "gw", "role": "grid_worker", "center": "G1"},
    "department": {"user": "h", "role": "department", "center": "D1", "department": "water"},
    "auditor": {"user": "a", "role": "auditor", "center": "D1"},
    "feed": {"user": "feed:cam", "role": "feed", "center": "T1"},
    "admin": {"user": "root", "role": "admin", "center": "D1"},
}


def relation(data_center: str, actor: Actor) -> str:
    home = POLICY.home(actor) or TREE.root.id
    if data_center == home:
        return "own"
    if TREE.is_within(data_center, home):
        return "child"
    if TREE.is_within(home, data_center):
        return "parent"
    return "sibling"


def cells() -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(role, permission, group, relation, data centers) for every incident and view target."""
    out = []
    for role, actor in ACTORS.items():
        for township in ("T1", "T2", "T3"):
            centers = TREE.centers_for(GRID_OF[township])
            rel = relation(township, actor)
            out.append((role, access.REPORT, "report", rel, centers))
            out.append((role, access.READ, "read", rel, centers))
            out.append((role, access.AUDIT, "audit", rel, centers))
            for action in (*HANDLER_ACTIONS, *OTHER_ACTIONS):
                out.append((role, access.action_permission(action), group_of(action), rel, centers))
            out.append((role, access.ALERT_INGEST, "alert_ingest", rel, centers))
            out.append((role, access.ALERT_READ, "alert_read", rel, centers))
            for permission in sorted(access.ALERT_ACTION_PERMISSIONS):
                out.append((role, permission, "alert_action", rel, centers))
        for center in ("C", "D1", "D2", "T1", "T2", "T3"):
            centers = POLICY.view_centers(center)
            rel = relation(center, actor)
            out.append((role, access.VIEW, "view", rel, centers))
            out.append((role, access.SUBSCRIBE, "subscribe", rel, centers))
    return out


CELLS = cells()


def test_matrix_covers_every_role_and_relation() -> None:
    seen = {(role, rel) for role, _, _, rel, _ in CELLS}
    for role in access.ROLES:
        home = POLICY.home(ACTORS[role])
        for rel in RELATIONS:
            if home == "C" and rel in ("parent", "sibling"):
                continue  # nothing lies above or beside the city
            if home == "T1" and rel == "child":
                continue  # no center lies beneath a township
            assert (role, rel) in seen, f"no cell for {role} with {rel} data"


@pytest.mark.parametrize(("role", "permission", "group", "rel", "centers"), CELLS,
                         ids=[f"{c[0]}-{c[1]}-{c[3]}-{'/'.join(c[4])}" for c in CELLS])
def test_each_cell_is_decided_as_specified(role: str, permission: str, group: str, rel: str,
                                           centers: tuple[str, ...]) -> None:
    decision = POLICY.decide(ACTORS[role], permission, centers, DEPARTMENT)
    assigned = role == "department"  # every target incident is dispatched to department water
    assert decision.allowed is expected(role, group, rel, assigned), decision.reason


def test_department_handler_sees_only_cases_dispatched_to_it() -> None:
    handler = ACTORS["department"]
    centers = TREE.centers_for("G1")
    assert POLICY.decide(handler, access.READ, centers, DEPARTMENT)
    other = {"kind": "department", "id": "housing"}
    denied = POLICY.decide(handler, access.READ, centers, other)
    assert not denied and "only cases dispatched to it" in denied.reason
    assert not POLICY.decide(handler, access.READ, centers, None)


def test_grid_worker_acts_only_on_cases_dispatched_to_them() -> None:
    worker = ACTORS["grid_worker"]
    centers = TREE.centers_for("G1")
    mine = {"kind": "grid_worker", "id": "gw"}
    for action in HANDLER_ACTIONS:
        permission = access.action_permission(action)
        assert POLICY.decide(worker, permission, centers, mine)
        assert not POLICY.decide(worker, permission, centers, {"kind": "grid_worker", "id": "x"})
    assert not POLICY.decide(worker, access.action_permission("close"), centers, mine)


def test_grid_worker_reports_only_in_their_own_township() -> None:
    worker = ACTORS["grid_worker"]
    assert POLICY.home(worker) == "T1"
    assert POLICY.decide(worker, access.REPORT, TREE.centers_for("G1"))
    assert not POLICY.decide(worker, access.REPORT, TREE.centers_for("G2"))


@pytest.mark.parametrize("actor", [
    {"user": "x", "role": "township_officer", "center": "D1"},  # wrong level for the role
    {"user": "x", "role": "district_officer", "center": None},
    {"user": "x", "role": "city_officer", "center": "NOPE"},
    {"user": "x", "role": "superuser", "center": "C"},
    {"user": "x", "role": "department", "center": "D1"},  # no department claim
])
def test_malformed_identities_are_denied(actor: Actor) -> None:
    assert not POLICY.decide(actor, access.READ, TREE.centers_for("G1"), DEPARTMENT)


def test_unknown_permission_is_denied_even_for_admin() -> None:
    assert not POLICY.decide(ACTORS["admin"], "incident.delete", ("C",))


def test_auditor_reads_everything_and_changes_nothing() -> None:
    auditor = ACTORS["auditor"]
    far = TREE.centers_for("G3")
    assert POLICY.decide(auditor, access.READ, far)
    assert POLICY.decide(auditor, access.AUDIT, far)
    reason = POLICY.decide(auditor, access.action_permission("close"), far).reason
    assert "read-only" in reason


def test_officers_act_only_in_the_name_of_their_center_or_one_beneath() -> None:
    def as_(role: str, center: str) -> bool:
        return POLICY.decide(ACTORS[role], access.ACT_AS, TREE.centers_for(center)).allowed

    assert as_("district_officer", "D1") and as_("district_officer", "T1")
    assert not as_("district_officer", "C") and not as_("district_officer", "D2")
    assert not as_("township_officer", "D1") and not as_("township_officer", "T2")
    assert not as_("auditor", "D1") and not as_("department", "D1")


def test_a_feed_passes_the_alert_ingest_gate_before_its_alerts_are_located() -> None:
    assert POLICY.decide(ACTORS["feed"], access.ALERT_INGEST, ())
    assert not POLICY.decide(ACTORS["township_officer"], access.ALERT_INGEST, ())
    assert not POLICY.decide(ACTORS["auditor"], access.ALERT_INGEST, ())


@pytest.mark.parametrize("actor", [{"user": "", "role": "city_officer", "center": "C"},
                                   {"user": "x", "role": "", "center": "C"}, {}])
def test_the_domain_refuses_anonymous_writes(actor: Actor) -> None:
    from domain.application import IncidentService
    from domain.incident import InvalidCommand

    service = IncidentService(TREE.centers_for, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    with pytest.raises(InvalidCommand, match="needs an actor"):
        service.report(actor=actor, grid="G1", source="hotline", category="noise",
                       severity="routine", description="x")
    assert service.recorder.max_notification_id() in (0, None)


# -- invariants over arbitrary identities and data ----------------------------------------

UNIT_IDS = [uid for uid, _, _ in UNITS]
ANY_ACTOR = st.fixed_dictionaries(
    {"user": st.sampled_from(["u", "gw", "x"]), "role": st.sampled_from([*access.ROLES, "root"]),
     "center": st.one_of(st.none(), st.sampled_from([*UNIT_IDS, "nowhere"]))},
    optional={"department": st.sampled_from(["water", "housing"])},
)
ANY_CENTERS = st.lists(st.sampled_from(UNIT_IDS), max_size=3)
ANY_ASSIGNEE = st.one_of(st.none(), st.fixed_dictionaries(
    {"kind": st.sampled_from(["department", "grid_worker"]),
     "id": st.sampled_from(["water", "gw", "x"])}))


@given(ANY_ACTOR, st.sampled_from(sorted(access.PERMISSIONS)), ANY_CENTERS, ANY_ASSIGNEE)
def test_nobody_but_admins_and_auditors_reaches_data_outside_their_home(
    actor: Actor, permission: str, centers: list[str], assignee: dict[str, str] | None
) -> None:
    decision = POLICY.decide(actor, permission, centers, assignee)
    if not decision.allowed or permission == access.TREE:
        return
    role = actor["role"]
    if role == "auditor":
        assert permission in access.READ_ONLY
        return
    if role == "admin":
        return
    home = POLICY.home(actor)
    if home is not None:
        assert home in centers or (permission == access.ALERT_INGEST and not centers)
    else:  # only a feed or a department may have no home center
        assert role in ("feed", "department") and actor.get("center") is None


@given(ANY_ACTOR, st.sampled_from(sorted(access.PERMISSIONS - access.READ_ONLY)), ANY_CENTERS)
def test_an_auditor_never_changes_anything(actor: Actor, permission: str,
                                           centers: list[str]) -> None:
    auditor: Actor = {**actor, "role": "auditor"}
    assert not POLICY.decide(auditor, permission, centers, DEPARTMENT)
