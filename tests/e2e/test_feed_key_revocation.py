"""Revoking a feed key closes the `/ws/feed` sockets it holds open (issue #11 row 3), with the
key revoked the way an operator does it: `linkage feed-key revoke <id>`, another process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from infra.cli.commands import main
from tests.conftest import RunningServer
from tests.e2e.alerting import alert

pytestmark = pytest.mark.ingest_modes  # every test: inline, and through the writer process


def fire(event_id: str) -> bytes:
    """An alert the rules answer with a major incident (fire in a watched zone)."""
    return orjson.dumps({"ref": event_id, "alert": alert(event_id, label="fire", score=0.95,
                                                        zones=["stairwell"])})


def rule_incidents(server: RunningServer) -> int:
    recorder = server.embedded.service.recorder  # type: ignore[attr-defined]
    return sum(1 for n in recorder.select_notifications(start=1, limit=100_000)
               if n.topic.endswith("Incident.Reported") and b"rule:fire_or_smoke" in n.state)


async def reply(ws: ClientConnection) -> dict[str, Any]:
    return dict(orjson.loads(await asyncio.wait_for(ws.recv(), 10)))


async def test_revoking_a_key_closes_its_open_feed_sockets_with_1008(server: RunningServer) -> None:
    keys = server.embedded.keys  # type: ignore[attr-defined]
    key_id, key = keys.issue("gate-revoked")
    url = f"{server.ws_url}/ws/feed"
    async with connect(url, additional_headers={"X-API-Key": key}) as ws, \
            connect(url, additional_headers=server.feed_headers) as other:
        await ws.send(fire("before"))
        first = await reply(ws)
        assert first["type"] == "ack" and first["results"][0].get("incident"), first
        assert rule_incidents(server) == 1

        revoked = CliRunner().invoke(main, ["feed-key", "revoke", key_id,
                                            "--data-dir", str(server.data_dir)])
        assert revoked.exit_code == 0, revoked.output

        # Keep sending, as the attacker did, until the server closes the socket.
        acked: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15  # a liveness guard; the server polls every second
        with pytest.raises(ConnectionClosed) as closed:
            for n in range(1000):
                assert time.monotonic() < deadline, "the revoked key's socket stayed open"
                await ws.send(fire(f"after-{n}"))
                answer = await reply(ws)
                if answer["type"] == "ack":
                    acked.append(answer)
                else:
                    assert answer["status"] == 401 and "revoked" in answer["detail"], answer
                await asyncio.sleep(0.1)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "revoked" in closed.value.rcvd.reason
        if server.embedded.writer is not None:  # type: ignore[attr-defined]
            # The writer process checks the key per batch: nothing after the revocation is stored.
            assert acked == []
        # No alert refused opened an incident: only those acknowledged (before the server
        # noticed) did.
        assert rule_incidents(server) == 1 + len(acked)

        # Another key's socket is untouched.
        await other.send(orjson.dumps({"ref": "other", "alert": alert("other-1")}))
        assert (await reply(other))["type"] == "ack"

    # And the revoked key cannot open a new one.
    async with connect(url, additional_headers={"X-API-Key": key}) as again:
        refused = await reply(again)
        assert (refused["type"], refused["status"]) == ("error", 401)
        with pytest.raises(ConnectionClosed) as info:
            await again.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
