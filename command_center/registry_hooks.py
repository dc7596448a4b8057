"""The registry's checks that other handlers call (kept apart from command_center/registry.py,
which imports the handlers' helpers, so the handlers can import these without a cycle)."""

from __future__ import annotations

from typing import Any

from command_center.types import Services


def check_dispatch(svc: Services, action: str, params: dict[str, Any], incident: Any) -> None:
    """Before a dispatch or a transfer: the assignee must be on the registry and serve the case's
    grid (a Problem 422 naming both otherwise). Without a registry nothing is checked."""
    registry = svc.registry
    if action not in ("dispatch", "transfer") or registry is None:
        return
    registry.check_assignee(params.get("assignee"), incident.grid, incident.centers,
                            svc.jurisdiction)
