"""Demo-like data for a console: incidents of several categories and states, dispatches to
departments, parties and grid workers, camera alerts and a storm. Used by the screenshot tool and
the console benchmark (the browser tests seed their own)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

TOWNSHIP = "130706001"
CAMERA_GRID = "130706001001001"

CASES: list[tuple[str, str, str, str]] = [  # (category, severity, source, description)
    ("fire_hazard", "major", "grid_worker", "电动车在楼道内充电，存在消防隐患"),
    ("road_damage", "routine", "hotline", "路面坑洼，影响车辆通行"),
    ("garbage", "routine", "wechat", "小区门口垃圾堆放多日无人清理"),
    ("noise", "routine", "hotline", "夜间施工噪音扰民"),
    ("illegal_parking", "routine", "resident", "消防通道被车辆占用"),
    ("water_leak", "routine", "grid_worker", "楼道水管漏水"),
    ("dispute", "routine", "hotline", "邻里因停车位发生纠纷"),
    ("public_security", "major", "camera", "有可疑人员在小区内徘徊"),
]
ASSIGNEES = [{"kind": "department", "id": "urban_management"},  # ids of infra/data/directory.toml
             {"kind": "department", "id": "housing"},
             {"kind": "party", "id": "xhy_property"},
             {"kind": "grid_worker", "id": "gw-{grid}"}]  # the case's own grid's worker


def seed(url: str, headers: dict[str, str], feed_headers: dict[str, str],
         grids: list[str]) -> list[str]:
    """Report and move cases through the loop; raise alerts and one storm. The incident ids."""
    ids: list[str] = []
    now = datetime.now(UTC)
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i, (category, severity, source, text) in enumerate(CASES * 2):
            grid = grids[i % len(grids)]
            made = client.post("/api/incidents", json={
                "source": source, "category": category, "severity": severity, "grid": grid,
                "description": text})
            made.raise_for_status()
            case = made.json()["id"]
            ids.append(case)
            step = i % 4
            if step >= 1:
                client.post(f"/api/incidents/{case}/accept", json={}).raise_for_status()
            if step >= 2:
                due = (now + timedelta(hours=(i % 5) * 3 - 2)).isoformat()
                assignee = dict(ASSIGNEES[i % len(ASSIGNEES)])
                assignee["id"] = assignee["id"].format(grid=grid)
                # Some dues lie past the SLA policy's resolve time (#14): say why, as an officer must.
                client.post(f"/api/incidents/{case}/dispatch", json={
                    "assignee": assignee, "due": due, "due_reason": "demo data: spread deadlines"}
                            ).raise_for_status()
            if step >= 3:
                client.post(f"/api/incidents/{case}/acknowledge", json={}).raise_for_status()
    with httpx.Client(base_url=url, headers=feed_headers, timeout=30) as feed:
        t0 = time.time()
        singles: list[dict[str, Any]] = [
            {"id": f"seed-{i}", "camera": f"cam-{CAMERA_GRID}-{1 + i % 2}",
             "label": ["person", "car", "bicycle", "dog"][i % 4], "score": 0.7,
             "start_time": t0 - 400 + i}
            for i in range(6)]
        feed.post("/api/ingest/alerts", json={"alerts": singles}).raise_for_status()
        storm = [{"id": f"seed-storm-{i}", "camera": f"cam-{CAMERA_GRID}-1", "label": "person",
                  "score": 0.6, "start_time": t0 + i * 0.05} for i in range(40)]
        for i in range(0, len(storm), 20):
            feed.post("/api/ingest/alerts", json={"alerts": storm[i:i + 20]}).raise_for_status()
    return ids
