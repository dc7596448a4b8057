"""Demo camera feeds: alerts through POST /api/ingest/alerts, with the odd small storm.

Frigate-like lifecycles (new → update → end), a watch-listed plate now and then, rare
fire/smoke in a watched zone (the rules file turns it into a major incident), and every
minute or so one camera bursts into a storm.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from infra.loaders.cameras import Camera

log = logging.getLogger(__name__)

LABELS = ["person"] * 6 + ["car"] * 3 + ["bicycle", "dog"]
PLATES = ["冀G12345", "冀GB2046", "冀GC7788", "京A12345"]


@dataclass
class CameraDemo:
    base_url: str
    cameras: list[Camera]
    rate: float = 1.0  # alerts per second, outside storms
    storm_every: float = 60.0  # seconds, on average
    headers: dict[str, str] = field(default_factory=dict)  # the feed's credentials
    rng: random.Random = field(default_factory=random.Random)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)  # event id -> alert body
    sent: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _new(self, now: float) -> dict[str, Any]:
        camera = self.rng.choice(self.cameras)
        label = self.rng.choice(LABELS)
        body: dict[str, Any] = {
            "id": f"demo-{int(now)}-{next(self._ids)}", "camera": camera.id, "label": label,
            "score": round(self.rng.uniform(0.55, 0.95), 2), "start_time": now,
            "zones": list(camera.zones[:1]),
        }
        if label == "car" and self.rng.random() < 0.2:
            body["plate"] = self.rng.choice(PLATES)
        if self.rng.random() < 0.02:
            body.update(label=self.rng.choice(["fire", "smoke"]), score=0.9,
                        zones=["stairwell"])
        return body

    async def _post(self, client: httpx.AsyncClient, alerts: list[dict[str, Any]]) -> None:
        response = await client.post("/api/ingest/alerts", json={"alerts": alerts})
        if response.status_code != 200:
            log.warning("demo alerts refused: %s %s", response.status_code, response.text[:200])
        self.sent += len(alerts)

    async def step(self, client: httpx.AsyncClient) -> None:
        now = time.time()
        if self.live and self.rng.random() < 0.5:
            event_id = self.rng.choice(list(self.live))
            body = dict(self.live[event_id])
            if self.rng.random() < 0.5:
                body.update(type="end", end_time=now)
                del self.live[event_id]
            else:
                body.update(type="update", score=min(1.0, body["score"] + 0.03), frame_time=now)
                self.live[event_id] = body
            await self._post(client, [body])
            return
        body = self._new(now)
        self.live[body["id"]] = body
        while len(self.live) > 30:
            self.live.pop(next(iter(self.live)))
        await self._post(client, [body])

    async def storm(self, client: httpx.AsyncClient) -> None:
        camera = self.rng.choice(self.cameras)
        now = time.time()
        burst = [
            {"id": f"storm-{int(now)}-{next(self._ids)}", "camera": camera.id, "label": "person",
             "score": round(self.rng.uniform(0.5, 0.8), 2), "start_time": now + i * 0.05}
            for i in range(self.rng.randint(25, 80))
        ]
        for i in range(0, len(burst), 20):
            await self._post(client, burst[i : i + 20])
            await asyncio.sleep(0.2)

    async def run(self, steps: int | None = None) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                     timeout=10) as client:
            next_storm = time.monotonic() + self.rng.uniform(5, self.storm_every)
            while steps is None or self.sent < steps:
                try:
                    if time.monotonic() >= next_storm:
                        await self.storm(client)
                        next_storm = time.monotonic() + self.rng.expovariate(1 / self.storm_every)
                    else:
                        await self.step(client)
                except httpx.HTTPError as exc:
                    log.warning("demo camera request failed: %s", exc)
                    await asyncio.sleep(1)
                await asyncio.sleep(self.rng.expovariate(self.rate) if self.rate else 0)
