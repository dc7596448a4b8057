"""`GET /readyz`: whether this process can serve now, with the reason for every check.

`/healthz` (command_center/api.py) says the process is alive. `/readyz` runs the checks the
composition root registered (`Services.readiness`: the event store, the runner's lag, the ingest
writer, Redis and Kafka in distributed mode) concurrently, each within `CHECK_TIMEOUT`, and
answers 200 when all pass, else 503; the body names each check, whether it passed and why.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.types import ReadyCheck

CHECK_TIMEOUT = 3.0


async def _run(check: ReadyCheck) -> tuple[bool, str]:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


async def readyz(request: Request) -> Response:
    svc = services(request)
    names = list(svc.readiness)
    results = await asyncio.gather(*(_run(svc.readiness[name]) for name in names))
    checks = {name: {"ok": ok, "detail": detail} for name, (ok, detail) in zip(names, results,
                                                                                 strict=True)}
    ready = all(ok for ok, _ in results)
    body = {"status": "ready" if ready else "not_ready", "mode": svc.mode, "checks": checks}
    return json_response(body, 200 if ready else 503, {"Cache-Control": "no-store"})


routes = [Route("/readyz", readyz, methods=["GET"])]
