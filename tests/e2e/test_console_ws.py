"""The console websocket protocol over a real socket: snapshot, consecutive deltas, resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from projections.patch import apply_changes
from tests.conftest import RunningServer, start_server

XIAHUAYUAN_GRID = "130706001001001"  # township 130706001
HUAYUAN_GRID = "130706200001001"  # township 130706200, same district


async def recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def open_console(server: RunningServer, center: str) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(server.console_url(center))
    await ws.send('{"type":"hello"}')
    snapshot = await recv(ws)
    assert snapshot["type"] == "snapshot"
    return ws, snapshot


async def post_reports(server: RunningServer, grid: str, n: int) -> list[str]:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        ids = []
        for i in range(n):
            response = await client.post("/api/incidents", json={
                "source": "grid_worker", "category": "garbage", "grid": grid,
                "description": f"garbage pile {i}"})
            assert response.status_code == 201
            ids.append(response.json()["id"])
        return ids


async def test_a_console_gets_a_snapshot_then_consecutive_deltas_that_rebuild_the_view(
    server: RunningServer,
) -> None:
    ws, snapshot = await open_console(server, "130706")
    view, seq, epoch = snapshot["view"], snapshot["seq"], snapshot["epoch"]
    ids = await post_reports(server, XIAHUAYUAN_GRID, 5)
    while not all(i in view["queue"] for i in ids):
        delta = await recv(ws)
        assert delta["type"] == "delta"
        assert delta["epoch"] == epoch
        assert delta["seq"] == seq + 1
        seq = delta["seq"]
        apply_changes(view, delta["changes"])
    await ws.close()
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        response = await client.get("/api/centers/130706/view")
    assert response.headers["x-linkage-seq"] == str(seq)
    assert response.json() == view


async def test_a_township_console_never_receives_another_townships_events(
    server: RunningServer,
) -> None:
    mine, _ = await open_console(server, "130706001")
    theirs, _ = await open_console(server, "130706200")
    await post_reports(server, HUAYUAN_GRID, 3)
    own = await post_reports(server, XIAHUAYUAN_GRID, 1)
    delta = await recv(mine)
    text = orjson.dumps(delta).decode()
    assert own[0] in text
    # the other township got exactly its 3 reports, and nothing about ours
    seen = []
    for _ in range(3):
        seen.append(orjson.dumps(await recv(theirs)).decode())
    assert all(own[0] not in frame for frame in seen)
    with pytest.raises(TimeoutError):
        await recv(mine, timeout=0.5)
    await mine.close()
    await theirs.close()


async def test_resume_after_a_restart_sends_exactly_the_missed_deltas(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        ws, snapshot = await open_console(server, "130700")
        view, seq, epoch = snapshot["view"], snapshot["seq"], snapshot["epoch"]
        await post_reports(server, XIAHUAYUAN_GRID, 2)
        for _ in range(2):
            delta = await recv(ws)
            assert delta["seq"] == seq + 1
            seq = delta["seq"]
            apply_changes(view, delta["changes"])
        await ws.close()
    finally:
        server.stop()  # the app is gone; the console is disconnected
    server = start_server(data, port=server.port)
    try:
        missed = await post_reports(server, HUAYUAN_GRID, 3)
        server.embedded.runner.catch_up()  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        async with websockets.connect(server.console_url("130700")) as ws:
            await ws.send(orjson.dumps({"type": "resume", "epoch": epoch, "seq": seq}).decode())
            while not all(i in view["queue"] for i in missed):
                frame = await recv(ws)
                assert frame["type"] == "delta", "resume after restart must not need a snapshot"
                assert frame["epoch"] == epoch
                assert frame["seq"] == seq + 1
                seq = frame["seq"]
                apply_changes(view, frame["changes"])
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
            assert (await client.get("/api/centers/130700/view")).json() == view
    finally:
        server.stop()


async def test_resume_from_another_epoch_gets_a_fresh_snapshot(server: RunningServer) -> None:
    async with websockets.connect(server.console_url("130706001")) as ws:
        await ws.send('{"type":"resume","epoch":"not-this-one","seq":3}')
        frame = await recv(ws)
        assert frame["type"] == "snapshot"
        assert frame["epoch"] != "not-this-one"


async def test_resume_from_the_future_gets_a_fresh_snapshot(server: RunningServer) -> None:
    _, snapshot = await open_console(server, "130706001")
    async with websockets.connect(server.console_url("130706001")) as ws:
        await ws.send(orjson.dumps({"type": "resume", "epoch": snapshot["epoch"],
                                    "seq": snapshot["seq"] + 50}).decode())
        assert (await recv(ws))["type"] == "snapshot"


async def test_an_unknown_center_is_refused_with_a_reason(server: RunningServer) -> None:
    async with websockets.connect(server.console_url("130706001001001")) as ws:
        frame = await recv(ws)
        assert frame["type"] == "error"
        assert "center" in frame["detail"]
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_ping_gets_pong(server: RunningServer) -> None:
    ws, _ = await open_console(server, "130700")
    await ws.send('{"type":"ping"}')
    assert (await recv(ws))["type"] == "pong"
    await ws.close()


async def test_a_killed_server_restarts_and_the_console_resumes_with_no_gap(
    tmp_path: Path,
) -> None:
    from tests.conftest import spawn_server

    data = tmp_path / "data"
    server = spawn_server(data)
    try:
        ws = await websockets.connect(server.console_url("130706"))
        await ws.send('{"type":"hello"}')
        snapshot = await recv(ws)
        view, seq, epoch = snapshot["view"], snapshot["seq"], snapshot["epoch"]
        first = await post_reports(server, XIAHUAYUAN_GRID, 3)  # type: ignore[arg-type]
        while not all(i in view["queue"] for i in first):
            delta = await recv(ws)
            assert delta["seq"] == seq + 1
            seq = delta["seq"]
            apply_changes(view, delta["changes"])
    finally:
        server.kill()  # SIGKILL: no shutdown hook runs
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws)
    server = spawn_server(data, port=server.port)
    try:
        later = await post_reports(server, HUAYUAN_GRID, 2)  # type: ignore[arg-type]
        async with websockets.connect(server.console_url("130706")) as ws:
            await ws.send(orjson.dumps({"type": "resume", "epoch": epoch, "seq": seq}).decode())
            while not all(i in view["queue"] for i in later):
                frame = await recv(ws)
                assert frame["type"] == "delta" and frame["epoch"] == epoch
                assert frame["seq"] == seq + 1, "no gap after a kill -9"
                seq = frame["seq"]
                apply_changes(view, frame["changes"])
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
            assert (await client.get("/api/centers/130706/view")).json() == view
    finally:
        server.kill()


async def test_consoles_with_and_without_compression_get_deltas_the_hub_wrote_itself(
    server: RunningServer,
) -> None:
    """Idle consoles get each delta from the hub's one pass over the sockets (encoded once per
    publication, deflated without context takeover, or plain), and rebuild the HTTP view."""
    hub = server.embedded.hub  # type: ignore[attr-defined]
    consoles = []
    for compression in ("deflate", None, "deflate", None):
        ws = await websockets.connect(server.console_url("130706"), compression=compression)
        await ws.send('{"type":"hello"}')
        snapshot = await recv(ws)
        consoles.append((ws, snapshot["view"], snapshot["seq"]))
    negotiated = [ws.response.headers.get("Sec-WebSocket-Extensions") for ws, _, _ in consoles]
    assert negotiated[1] is None and negotiated[3] is None
    assert negotiated[0] is not None and "server_no_context_takeover" in negotiated[0]
    written = hub.written
    ids = await post_reports(server, XIAHUAYUAN_GRID, 5)
    for ws, view, seq in consoles:
        while not all(i in view["queue"] for i in ids):
            delta = await recv(ws)
            assert (delta["type"], delta["seq"]) == ("delta", seq + 1)
            seq = delta["seq"]
            apply_changes(view, delta["changes"])
        await ws.close()
    assert hub.written - written >= 4 * 5  # every console took its deltas from the hub directly
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as client:
        response = await client.get("/api/centers/130706/view")
    assert response.headers["x-linkage-seq"] == str(seq)
    assert all(view == response.json() for _, view, _ in consoles)
