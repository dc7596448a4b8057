"""`GET /api/directory`: the names a console shows and the assignees it offers, per user.

The answer is the part of the directory (domain/directory.py) and of the camera registry that
the user's watchable centers reach: parties serving those centers (or the centers above them),
the grid workers and cameras of their grids, and every role's name. Its size is the registry's,
never the history's.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.problems import Problem
from command_center.types import Services
from command_center.watch import watcher
from domain import access
from domain.incident import Actor
from domain.jurisdiction import Jurisdiction

# "城镇街道第一社区网格01 摄像头2": the bundled registry's names, the grid's name and a number.
_NUMBERED = re.compile(r"^(?P<grid>.*\S)\s*摄像头\s*(?P<n>\d+)$")


def camera_names(camera_id: str, name: str, grid: str,
                 jurisdiction: Jurisdiction) -> dict[str, Any]:
    """A camera's name and place in both languages. The place is its grid. The registry names
    cameras in Chinese; a name of the form "<grid name> 摄像头N" gets the English
    "<grid English name> camera N", any other keeps its Chinese name in English too."""
    unit = jurisdiction.unit(grid)
    place = {"zh": unit.name, "en": unit.name_en or unit.name}
    match = _NUMBERED.match(name)
    if not name:
        names = {"zh": f"{unit.name} 摄像头", "en": f"{place['en']} camera"}
    elif match and match["grid"] == unit.name:
        names = {"zh": name, "en": f"{place['en']} camera {match['n']}"}
    else:
        names = {"zh": name, "en": name}
    return {"id": camera_id, "name": names, "place": place, "grid": grid}


def directory_for(svc: Services, actor: Actor) -> dict[str, Any]:
    """The directory as `actor` may see it (see the module's docstring)."""
    directory = svc.directory
    if directory is not None and svc.registry is not None:  # the registry's projection
        directory = svc.registry.directory(directory.roles)
    if directory is None:
        raise Problem(503, "the directory is not configured on this server")
    jurisdiction = svc.jurisdiction
    watches = watcher(svc, actor)
    visible = directory.visible(jurisdiction, watches)
    # A department and a grid worker watch no center's console; they still see their own name.
    own = None
    if actor.get("role") == "department":
        own = directory.party("department", str(actor.get("department", "")))
        if own is not None and all(p["id"] != own.id for p in visible["parties"]):
            visible["parties"].append(own.as_dict())
    elif actor.get("role") == "grid_worker":
        worker = directory.grid_worker(actor["user"])
        if worker is not None and all(w["id"] != worker.id for w in visible["grid_workers"]):
            visible["grid_workers"].append(worker.as_dict())
    grids = {w["grid"] for w in visible["grid_workers"]}
    watched = [u.id for u in jurisdiction.centers() if watches(u.id)]
    grids |= {g.id for c in watched for g in jurisdiction.grids_under(c)}
    cameras = [camera_names(cid, name, grid, jurisdiction)
               for cid, name, grid in svc.cameras if grid in grids]
    return {**visible, "cameras": cameras,
            "roles": {role: name.as_dict() for role, name in directory.roles.items()}}


async def get_directory(request: Request) -> Response:
    svc = services(request)
    actor = svc.authenticate(request)
    svc.authorize(actor, access.TREE, ())
    return json_response(await run_in_threadpool(directory_for, svc, actor))


routes = [Route("/api/directory", get_directory, methods=["GET"])]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add `GET /api/directory` to the /openapi.json document."""
    problem = {"$ref": "#/components/responses/Problem"}
    doc["paths"].setdefault("/api/directory", {})["get"] = {
        "summary": "Parties, grid workers, cameras and role names the user's centers reach",
        "operationId": "getDirectory",
        "responses": {
            "200": {"description": "{parties, grid_workers, cameras, roles}",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            **{str(code): problem for code in (401, 403, 503)},
        },
    }
