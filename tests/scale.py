"""Many open incidents, quickly: reported through the service in-process, saved in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from domain.application import IncidentService
from domain.incident import Actor, Incident

OFFICER: Actor = {"user": "scale", "role": "city_officer", "center": None}


def report_many(service: IncidentService, grids: Sequence[str],
                centers_for: Callable[[str], Sequence[str]], count: int,
                batch: int = 500) -> list[str]:
    """Report `count` incidents over `grids` (one in twenty major), `batch` per transaction."""
    ids: list[str] = []
    for start in range(0, count, batch):
        incidents = []
        for n in range(start, min(start + batch, count)):
            grid = grids[n % len(grids)]
            incidents.append(Incident.report(
                source="hotline", category="road_damage",
                severity="major" if n % 20 == 0 else "routine", grid=grid,
                centers=list(centers_for(grid)), actor=OFFICER,
                description=f"路面塌陷 第{n}号 / road surface collapsed, case {n}"))
        service.save(*incidents)
        ids += [str(i.id) for i in incidents]
    return ids
