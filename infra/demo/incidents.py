"""Demo feeds: realistic activity driven through the public HTTP API.

Hotline calls and grid-worker patrol reports come in; duty officers accept,
dispatch, departments acknowledge and resolve, residents rate the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

log = logging.getLogger(__name__)

CATEGORIES = {
    "road_damage": "路面坑洼，影响车辆通行",
    "garbage": "小区门口垃圾堆放多日无人清理",
    "noise": "夜间施工噪音扰民",
    "illegal_parking": "消防通道被车辆占用",
    "water_leak": "楼道水管漏水",
    "fire_hazard": "电动车在楼道内充电，存在消防隐患",
    "dispute": "邻里因停车位发生纠纷",
    "public_security": "有可疑人员在小区内徘徊",
}
# Dispatch targets: entries of the bundled directory (infra/data/directory.toml).
ASSIGNEES = [{"kind": "department", "id": d} for d in (
    "urban_management", "housing", "public_security", "water_affairs", "fire_rescue",
    "street_office")] + [{"kind": "party", "id": "xhy_property"}]
# The ones that serve one district only (the registry refuses a dispatch outside it); the
# others serve the whole city.
LOCAL = {"street_office": "130706", "xhy_property": "130706"}

NEXT_ACTION = {
    "reported": ["accept"] * 8 + ["reject", "mark-duplicate"],
    "accepted": ["dispatch"],
    "returned": ["dispatch"],
    "reopened": ["dispatch"],
    "dispatched": ["acknowledge"] * 9 + ["return", "supervise"],
    "acknowledged": ["progress", "resolve", "resolve"],
    "resolved": ["return-visit"],
}


@dataclass
class DemoDriver:
    base_url: str
    grids: list[str]
    rate: float = 2.0  # actions per second
    headers: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    open: dict[str, str] = field(default_factory=dict)  # incident id -> status
    centers: dict[str, list[str]] = field(default_factory=dict)  # incident id -> its centers
    sent: int = 0

    def _body(self, action: str, incident_id: str) -> dict[str, Any]:
        rng = self.rng
        now = datetime.now(UTC)
        if action == "reject":
            return {"reason": "不属于受理范围 / out of scope"}
        if action == "mark-duplicate":
            others = [i for i in self.open if i != incident_id]
            return {"of": rng.choice(others)} if others else {"reason": "duplicate"}
        if action == "dispatch":
            due = now + timedelta(minutes=rng.choice([-20, 30, 60, 120, 240, 1440]))
            centers = self.centers.get(incident_id, [])
            serving = [a for a in ASSIGNEES if LOCAL.get(a["id"], "") in ("", *centers)]
            return {"assignee": dict(rng.choice(serving)),
                    "due": due.isoformat()}
        if action == "return":
            return {"reason": "不属于本部门职责 / not our department"}
        if action == "progress":
            return {"note": "已到达现场，正在处置 / on site, handling"}
        if action == "resolve":
            return {"outcome": "已处置完毕 / handled"}
        if action == "return-visit":
            return {"satisfaction": rng.choices([5, 4, 3, 2, 1], [50, 25, 10, 10, 5])[0],
                    "comment": ""}
        if action == "supervise":
            district = self.centers.get(incident_id, ["", "130700"])[1]
            return {"note": "请加快办理 / please expedite", "by_center": district}
        if action == "reopen":
            return {"reason": "群众不满意 / resident dissatisfied"}
        return {}

    async def report(self, client: httpx.AsyncClient) -> None:
        category = self.rng.choice(list(CATEGORIES))
        body = {
            "source": self.rng.choice(["hotline", "hotline", "grid_worker", "wechat"]),
            "category": category,
            "severity": "major" if self.rng.random() < 0.05 else "routine",
            "grid": self.rng.choice(self.grids),
            "description": CATEGORIES[category],
        }
        response = await client.post("/api/incidents", json=body)
        if response.status_code == 201:
            data = response.json()
            self.open[data["id"]] = "reported"
            self.centers[data["id"]] = data["centers"]

    async def advance(self, client: httpx.AsyncClient) -> None:
        incident_id = self.rng.choice(list(self.open))
        status = self.open[incident_id]
        if status == "visited":
            action = "close"
        else:
            action = self.rng.choice(NEXT_ACTION.get(status, ["close"]))
        response = await client.post(f"/api/incidents/{incident_id}/{action}",
                                     json=self._body(action, incident_id))
        if response.status_code == 200:
            data = response.json()
            if data["status"] == "visited" and "reopen" in data["allowed_actions"] \
                    and "close" not in data["allowed_actions"]:
                await client.post(f"/api/incidents/{incident_id}/reopen",
                                  json=self._body("reopen", incident_id))
                data["status"] = "reopened"
            if data["status"] in ("closed", "rejected", "duplicate"):
                self.open.pop(incident_id, None)
                self.centers.pop(incident_id, None)
            else:
                self.open[incident_id] = data["status"]
        elif response.status_code in (404, 409):
            self.open.pop(incident_id, None)

    async def step(self, client: httpx.AsyncClient) -> None:
        if len(self.open) < 15 or self.rng.random() < 0.3:
            await self.report(client)
        else:
            await self.advance(client)
        self.sent += 1

    async def run(self, steps: int | None = None) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers,
                                     timeout=10) as client:
            while steps is None or self.sent < steps:
                try:
                    await self.step(client)
                except httpx.HTTPError as exc:
                    log.warning("demo request failed: %s", exc)
                    await asyncio.sleep(1)
                await asyncio.sleep(self.rng.expovariate(self.rate) if self.rate else 0)
