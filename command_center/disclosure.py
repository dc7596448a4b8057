"""Public disclosure, no login: `GET /public` (the page), `GET /api/public/cases` (the feed of
handled cases, newest first, paged) and `GET /api/public/figures` (monthly figures per
township). Built from projections/disclosure.py, caught up from the store on each (uncached)
read; answers are cached for a few seconds and each address is rate limited (429 with
Retry-After). Free text is redacted; opted-out categories and cases closed less than the delay
ago never appear; names, phones and ID numbers are never part of an answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from command_center.api import json_response, services
from command_center.intake import RateLimiter, retry_after
from command_center.problems import Problem
from domain.jurisdiction import Jurisdiction
from projections.disclosure import Disclosure, apply, redact
from projections.envelope import Envelope

STATIC = Path(__file__).parent / "static"
MAX_PAGE = 100
MAX_ADDRESSES = 10_000


@dataclass
class DisclosureSettings:
    delay: timedelta = timedelta(hours=72)
    opt_out: tuple[str, ...] = ("dispute",)
    rate: float = 2.0  # requests per second per address
    burst: float = 20.0
    cache_seconds: float = 30.0


@dataclass
class DisclosureState:
    read: Callable[[int, int], list[Envelope]]
    jurisdiction: Jurisdiction
    names_in_grid: Callable[[str], list[str]]  # the residents' names of a grid, to redact
    settings: DisclosureSettings = field(default_factory=DisclosureSettings)
    disclosure: Disclosure = field(default_factory=Disclosure)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _limiter: RateLimiter | None = None

    def limiter(self) -> RateLimiter:
        if self._limiter is None:
            self._limiter = RateLimiter(self.settings.rate, self.settings.burst)
        return self._limiter

    def units_of(self, grid: str) -> tuple[str, str]:
        unit = self.jurisdiction.get(grid)
        if unit is None:
            return "", ""
        chain = [u for u in self.jurisdiction.ancestors(grid)]
        community = next((u.id for u in chain if u.level == "community"), "")
        township = next((u.id for u in chain if u.level == "township"), "")
        return community, township

    def current(self) -> Disclosure:
        with self._lock:
            while True:
                events = self.read(self.disclosure.position, 5000)
                for event in events:
                    apply(self.disclosure, event, self.units_of)
                if len(events) < 5000:
                    return self.disclosure

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.settings.cache_seconds:
            return hit[1]
        value = build()
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[key] = (now, value)
        return value

    def _name(self, unit_id: str) -> dict[str, str]:
        unit = self.jurisdiction.get(unit_id)
        if unit is None:
            return {"zh": "", "en": ""}
        return {"zh": unit.name, "en": unit.name_en or unit.name}

    def cases(self, after: int | None, limit: int) -> dict[str, Any]:
        """Published cases, newest first, older than the delay, not opted out."""
        disclosure = self.current()
        cutoff = (self.clock() - self.settings.delay).isoformat()
        items: list[dict[str, Any]] = []
        with self._lock:
            published = list(reversed(disclosure.published.values()))
        for case in published:
            if after is not None and case["n"] >= after:
                continue
            if case["category"] in self.settings.opt_out or case["closed"] > cutoff:
                continue
            exact = [*case["_reporter"], *self.names_in_grid(case["grid"])]
            items.append({
                "n": case["n"], "category": case["category"],
                "community": {"id": case["community"], "name": self._name(case["community"])},
                "township": {"id": case["township"], "name": self._name(case["township"])},
                "reported": case["reported"][:10], "resolved": case["closed"][:10],
                "outcome": redact(case["outcome"], exact),
                "satisfaction": case["satisfaction"]})
            if len(items) >= limit:
                break
        next_after = items[-1]["n"] if len(items) == limit else None
        return {"items": items, "next_after": next_after,
                "delay_hours": self.settings.delay.total_seconds() / 3600}

    def figures(self) -> dict[str, Any]:
        """Per month that ended at least the delay ago, per township: closed cases, rated
        ones and mean satisfaction, without the opted-out categories."""
        disclosure = self.current()
        now = self.clock()
        months = []
        with self._lock:
            stored = {m: {t: dict(c) for t, c in v.items()} for m, v in disclosure.months.items()}
        for month in sorted(stored, reverse=True):
            year, number = int(month[:4]), int(month[5:7])
            end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
            if end + self.settings.delay > now:
                continue
            townships = []
            for township, categories in sorted(stored[month].items()):
                kept = [v for c, v in categories.items() if c not in self.settings.opt_out]
                closed = sum(v["closed"] for v in kept)
                if not closed:
                    continue
                rated = sum(v["rated"] for v in kept)
                total = sum(v["satisfaction_sum"] for v in kept)
                townships.append({"id": township, "name": self._name(township),
                                  "closed": closed, "rated": rated,
                                  "mean_satisfaction": round(total / rated, 2) if rated else None})
            months.append({"month": month, "townships": townships})
        return {"months": months}


def state(request: Request) -> DisclosureState:
    svc = services(request)
    found = svc.disclosure
    if not isinstance(found, DisclosureState):
        raise Problem(503, "public disclosure is not configured on this server")
    address = request.client.host if request.client else ""
    limiter = found.limiter()
    if len(limiter._buckets) > MAX_ADDRESSES:  # bounded: forget the quiet addresses
        limiter._buckets.clear()
    wait = limiter.take(address)
    if wait > 0:
        raise Problem(429, "too many requests to the public disclosure; retry later",
                      headers={"Retry-After": retry_after(wait)})
    return found


async def public_cases(request: Request) -> Response:
    disclosure = state(request)
    try:
        limit = int(request.query_params.get("limit", "50"))
        after_text = request.query_params.get("after")
        after = int(after_text) if after_text else None
    except ValueError:
        raise Problem(422, "limit and after must be integers", field="limit") from None
    if not 1 <= limit <= MAX_PAGE:
        raise Problem(422, f"limit must be from 1 to {MAX_PAGE}; got {limit}", field="limit")
    key = f"cases:{after}:{limit}"
    data = await run_in_threadpool(disclosure.cached, key,
                                   lambda: disclosure.cases(after, limit))
    return json_response(data, headers={"Cache-Control": "public, max-age=30"})


async def public_figures(request: Request) -> Response:
    disclosure = state(request)
    data = await run_in_threadpool(disclosure.cached, "figures", disclosure.figures)
    return json_response(data, headers={"Cache-Control": "public, max-age=30"})


async def public_page(request: Request) -> Response:
    state(request)
    return FileResponse(STATIC / "public.html", media_type="text/html; charset=utf-8")


routes = [
    Route("/public", public_page, methods=["GET"]),
    Route("/api/public/cases", public_cases, methods=["GET"]),
    Route("/api/public/figures", public_figures, methods=["GET"]),
]


def add_openapi(doc: dict[str, Any]) -> None:
    """Add the public routes (no login) to the /openapi.json document."""
    problem = {"$ref": "#/components/responses/Problem"}
    public: list[dict[str, list[str]]] = []  # no security requirement
    doc["paths"]["/api/public/cases"] = {"get": {
        "summary": "Handled cases, redacted, newest first", "operationId": "publicCases",
        "security": public,
        "parameters": [
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
            {"name": "after", "in": "query", "required": False, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "{items, next_after, delay_hours}",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **{str(c): problem for c in (422, 429)}}}}
    doc["paths"]["/api/public/figures"] = {"get": {
        "summary": "Monthly figures per township", "operationId": "publicFigures",
        "security": public,
        "responses": {"200": {"description": "{months}",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "429": problem}}}
