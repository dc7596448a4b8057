"""The one table of loop actions (domain/actions.py) and every list derived from it agree."""

from __future__ import annotations

import pytest

from command_center.openapi import build_openapi
from command_center.schemas import ACTION_BODIES, Action, body_of
from domain import access
from domain.actions import BY_PATH, LOOP_ACTIONS, PATHS
from domain.application import IncidentService, NotFound
from domain.incident import ALLOWED, Incident, public_name
from tests.access_spec import HANDLER_ACTIONS, OTHER_ACTIONS

# The HTTP contract (ARCHITECTURE.md), written out: these paths must never change.
CONTRACT = ("accept", "reject", "mark-duplicate", "dispatch", "return", "transfer", "acknowledge",
            "progress", "resolve", "return-visit", "reopen", "close")


def test_the_table_keeps_the_http_contract_and_adds_supervise_escalate_and_visit_attempt() -> None:
    assert (*CONTRACT, "supervise", "escalate", "visit-attempt") == PATHS


def test_action_names_are_spelled_with_hyphens_wherever_users_see_them() -> None:
    assert public_name("mark_duplicate") == "mark-duplicate"
    assert public_name("return_visit") == "return-visit"
    assert public_name("accept") == "accept"
    assert BY_PATH["return-visit"].name == "return_visit"


def test_every_action_the_aggregate_can_allow_is_in_the_table_and_nothing_else() -> None:
    allowed = {name for names in ALLOWED.values() for name in names} | {"supervise", "escalate"}
    assert {action.name for action in LOOP_ACTIONS} == allowed


def test_each_action_runs_the_incident_command_of_its_name() -> None:
    for action in LOOP_ACTIONS:
        method = "return_" if action.name == "return" else action.name
        assert action.command is getattr(Incident, method), action.name


def test_the_access_policy_has_one_permission_per_table_action() -> None:
    assert access.INCIDENT_ACTIONS == PATHS
    assert {f"incident.{path}" for path in PATHS} == access.ACTION_PERMISSIONS
    assert access.ACTION_PERMISSIONS <= access.PERMISSIONS
    assert {access.action_permission(path) for path in PATHS} == access.ACTION_PERMISSIONS


def test_handler_actions_are_the_ones_the_access_spec_lets_an_assignee_do() -> None:
    assert {a.path for a in LOOP_ACTIONS if a.handler} == set(HANDLER_ACTIONS)
    assert {f"incident.{a}" for a in HANDLER_ACTIONS} == access.HANDLER_PERMISSIONS
    assert {a.path for a in LOOP_ACTIONS if not a.handler} == set(OTHER_ACTIONS)


def test_every_table_action_has_a_request_body_in_table_order() -> None:
    assert tuple(ACTION_BODIES) == PATHS
    assert all(issubclass(body, Action) for body in ACTION_BODIES.values())


def test_a_body_for_an_action_outside_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="'archive' is not a loop action"):
        body_of("archive")


def test_openapi_lists_one_action_path_per_table_action() -> None:
    prefix = "/api/incidents/{incident_id}/"
    paths = [p.removeprefix(prefix) for p in build_openapi()["paths"] if p.startswith(prefix)]
    assert tuple(paths) == PATHS


def test_the_application_refuses_an_action_outside_the_table_naming_the_table() -> None:
    service = IncidentService(lambda grid: ["c"], env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    actor = {"user": "u", "role": "admin", "center": None}
    with pytest.raises(NotFound, match="unknown action 'archive'; expected one of accept, ") as e:
        service.act("00000000-0000-0000-0000-000000000001", "archive", actor=actor)
    assert ", ".join(PATHS) in str(e.value)
