"""Group commit over HTTP: concurrent officers' commands on a real server keep the outcome of
one-at-a-time execution, and a server killed with SIGKILL under load has lost no acknowledged
command and keeps every incident's history whole."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, spawn_server, start_server
from tests.e2e.test_http_api import DUE, REPORT

INCIDENTS = 20
PER_INCIDENT = 10
DISPATCH = {"assignee": {"kind": "department", "id": "housing"}, "due": DUE}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "data")
    yield server
    server.stop()


def seed(client: httpx.Client) -> list[str]:
    """20 incidents: the first half reported (version 1), the second half accepted (version 2)."""
    ids = []
    for i in range(INCIDENTS):
        response = client.post("/api/incidents", json=REPORT)
        assert response.status_code == 201, response.text
        incident_id = response.json()["id"]
        if i >= INCIDENTS // 2:
            assert client.post(f"/api/incidents/{incident_id}/accept", json={}).status_code == 200
        ids.append(incident_id)
    return ids


def plan(ids: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Per incident 10 commands: 7 at its current version, 3 at a version it never had."""
    out = []
    for i, incident_id in enumerate(ids):
        accepted = i >= INCIDENTS // 2
        action, body = ("dispatch", DISPATCH) if accepted else ("accept", {})
        current = 2 if accepted else 1
        for k in range(PER_INCIDENT):
            version = current if k < 7 else current + 3
            out.append((incident_id, action, {**body, "expected_version": version,
                                              "note": f"command {i}-{k}"}))
    return out


async def send_all(url: str, headers: dict[str, str],
                   commands: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(commands))
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60,
                                 limits=limits) as client:
        return list(await asyncio.gather(*(
            client.post(f"/api/incidents/{incident_id}/{action}", json=body)
            for incident_id, action, body in commands)))


def timeline(client: httpx.Client, incident_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/incidents/{incident_id}")
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["timeline"]
    return events


def test_200_concurrent_commands_give_the_events_and_409s_of_one_at_a_time(
        running: RunningServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=running.url, headers=running.headers, timeout=30) as client:
        ids = seed(client)
        commands = plan(ids)
        responses = asyncio.run(send_all(running.url, running.headers, commands))
        concurrent = [r.status_code for r in responses]
        concurrent_timelines = [[(e["version"], e["type"]) for e in timeline(client, i)]
                                for i in ids]
        # Each 200 answered with the incident as its own command left it (its note).
        for (incident_id, _action, body), response in zip(commands, responses, strict=True):
            if response.status_code == 200:
                events = timeline(client, incident_id)
                assert events[-1]["data"]["note"] == body["note"]
                assert response.json()["version"] == events[-1]["version"]
            else:
                assert response.headers["content-type"].startswith("application/problem+json")
    serial_server = start_server(tmp_path / "serial")
    try:
        with httpx.Client(base_url=serial_server.url, headers=serial_server.headers,
                          timeout=30) as client:
            serial_ids = seed(client)
            serial = [client.post(f"/api/incidents/{i}/{action}", json=body).status_code
                      for i, action, body in plan(serial_ids)]
            serial_timelines = [[(e["version"], e["type"]) for e in timeline(client, i)]
                                for i in serial_ids]
    finally:
        serial_server.stop()
    assert sorted(concurrent) == sorted(serial) == [200] * 20 + [409] * 180
    assert concurrent_timelines == serial_timelines


def test_a_server_killed_under_load_lost_no_acknowledged_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    served = spawn_server(data)
    acknowledged: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=served.url, headers=served.headers, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.post("/api/incidents", json=REPORT)
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    acknowledged.append(response.json()["id"])

    workers = [threading.Thread(target=load) for _ in range(16)]
    try:
        for worker in workers:
            worker.start()
        while len(acknowledged) < 300 and all(w.is_alive() for w in workers):
            threading.Event().wait(0.02)
        served.kill()  # SIGKILL while 16 clients keep commands in flight
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert len(acknowledged) >= 300
    restarted = spawn_server(data)
    try:
        with httpx.Client(base_url=restarted.url, headers=restarted.headers,
                          timeout=30) as client:
            for incident_id in acknowledged:
                events = timeline(client, incident_id)
                assert [(e["version"], e["type"]) for e in events] == [(1, "Reported")]
            # The store takes commands again on what it kept.
            response = client.post(f"/api/incidents/{acknowledged[-1]}/accept", json={})
            assert response.status_code == 200, response.text
    finally:
        restarted.kill()
