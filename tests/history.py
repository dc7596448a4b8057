"""A scripted, deterministic incident history driven straight through the IncidentService.

Used by the equivalence and fault tests and the benchmark: the same seed gives the same
commands (the stored events differ only in ids and timestamps).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from domain.application import IncidentService
from domain.incident import Actor

OFFICER: Actor = {"user": "script", "role": "city_officer", "center": None}
DEPARTMENTS = ("urban_management", "housing", "public_security", "water_affairs")

# status -> the actions that move it forward (weights by repetition): all five steps.
NEXT = {
    "reported": ["accept"] * 8 + ["reject", "mark-duplicate"],
    "accepted": ["dispatch"],
    "returned": ["dispatch"],
    "reopened": ["dispatch"],
    "dispatched": ["acknowledge"] * 6 + ["return", "transfer"],
    "acknowledged": ["progress", "resolve", "resolve"],
    "resolved": ["return-visit"],
    "visited": ["close"],
}
DONE = frozenset({"rejected", "duplicate", "closed"})


def _params(action: str, rng: random.Random, others: Sequence[str]) -> dict[str, Any]:
    if action == "reject":
        return {"reason": "out of scope"}
    if action == "mark-duplicate":
        return {"of": rng.choice(others)}
    if action in ("dispatch", "transfer"):
        params: dict[str, Any] = {
            "assignee": {"kind": "department", "id": rng.choice(DEPARTMENTS)},
            "due": f"2026-12-{rng.randint(1, 28):02d}T12:00:00+00:00"}
        # may be later than the SLA policy's resolve time, which needs a reason
        params["due_reason"] = "scripted deadline"
        return params
    if action == "return":
        return {"reason": "not our department"}
    if action == "progress":
        return {"note": "on site"}
    if action == "resolve":
        return {"outcome": "handled"}
    if action == "return-visit":
        return {"satisfaction": rng.choice([5, 5, 4, 3, 2])}
    if action == "reopen":
        return {"reason": "resident dissatisfied"}
    return {}


class ScriptedHistory:
    """Reports `incidents` incidents over grids and moves them along; yields after each command."""

    def __init__(self, service: IncidentService, grids: Sequence[str], incidents: int,
                 seed: int = 7, in_flight: int = 20) -> None:
        self.service = service
        self.grids = list(grids)
        self.incidents = incidents
        self.rng = random.Random(seed)
        self.in_flight = in_flight
        self.open: dict[str, str] = {}
        self.reported = 0
        self.commands = 0

    def step(self) -> bool:
        """Run one command; False once every incident is reported and most are finished."""
        rng = self.rng
        if self.reported < self.incidents and (len(self.open) < self.in_flight
                                               or rng.random() < 0.2):
            incident = self.service.report(
                actor=OFFICER, grid=rng.choice(self.grids), source="hotline",
                category=rng.choice(["noise", "garbage", "road_damage"]),
                severity="major" if rng.random() < 0.1 else "routine",
                description=f"scripted incident {self.reported}",
            )
            self.open[str(incident.id)] = "reported"
            self.reported += 1
        elif self.open and (self.reported < self.incidents or len(self.open) > self.in_flight // 2):
            incident_id = rng.choice(list(self.open))
            status = self.open[incident_id]
            action = rng.choice(NEXT[status])
            others = [i for i in self.open if i != incident_id]
            if action == "mark-duplicate" and not others:
                action = "accept"
            if action == "close" and status == "visited":
                incident = self.service.get(incident_id)
                action = "reopen" if incident.allowed_actions() == ("reopen",) else "close"
            params = _params(action, rng, others)
            if action == "transfer" and params["assignee"] == self.service.get(incident_id).assignee:
                action, params = "acknowledge", {}
            incident = self.service.act(incident_id, action, actor=OFFICER, **params)
            status = incident.status.value
            if status in DONE:
                del self.open[incident_id]
            else:
                self.open[incident_id] = status
        else:
            return False
        self.commands += 1
        return True

    def run(self, limit: int | None = None) -> int:
        """Run up to `limit` commands (all when None); how many ran."""
        ran = 0
        while (limit is None or ran < limit) and self.step():
            ran += 1
        return ran
