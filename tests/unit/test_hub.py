"""The hub and a console session, with a hand-written fake socket: slow consoles resync."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import orjson

from command_center.console import ConsoleSession
from command_center.hub import Hub
from command_center.metrics import Metrics
from command_center.protocol import Frame, delta_frame
from projections.center_view import new_view
from projections.patch import apply_changes, set_


class FakeSocket:
    """Records sent frames; can be told to stall like a console on a bad link."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send_text(self, text: str) -> None:
        await self.open.wait()
        self.sent.append(orjson.loads(text))


class Source:
    """A view source that folds what it publishes, like the embedded runner."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.view = new_view("c")
        self.seq = 0

    def has_center(self, center: str) -> bool:
        return center == "c"

    def snapshot(self, center: str) -> tuple[str, int, dict[str, Any]]:
        return "e1", self.seq, orjson.loads(orjson.dumps(self.view))

    def history(self, center: str, epoch: str, seq: int) -> list[Frame] | None:
        return None

    def frame(self, n: int) -> Frame:
        changes = [set_(["counts", "reported"], n)]
        apply_changes(self.view, changes)
        self.seq += 1
        return Frame("e1", self.seq, delta_frame("c", "e1", self.seq, changes))

    def change(self, n: int) -> None:
        self.hub.publish_frame("c", self.frame(n))

    def changes(self, *ns: int) -> None:
        """One batch of several deltas, as a runner publishes a batch."""
        self.hub.publish_frames([("c", self.frame(n)) for n in ns])


class Svc:
    def __init__(self, views: Source) -> None:
        self.views = views
        self.metrics = Metrics()

    def frames(self, kind: str) -> float | None:
        return self.metrics.registry.get_sample_value("linkage_console_frames_total",
                                                      {"kind": kind})


def session(hub: Hub, source: Source, ws: FakeSocket) -> ConsoleSession:
    return ConsoleSession(ws, Svc(source), hub.subscribe("c"))  # type: ignore[arg-type]


async def sent(ws: FakeSocket, n: int) -> None:
    """Until the socket has been sent n frames (a liveness guard, not a timing assertion)."""
    async def until() -> None:
        while len(ws.sent) < n:
            await asyncio.sleep(0)
    await asyncio.wait_for(until(), 5)


async def test_a_console_that_falls_behind_gets_a_fresh_snapshot_then_continues() -> None:
    hub = Hub(queue_size=8)
    source = Source(hub)
    ws = FakeSocket()
    console = session(hub, source, ws)
    await console.start(None)
    pump = asyncio.create_task(console.pump())
    await sent(ws, 1)
    ws.open.clear()  # the link stalls
    source.change(1)
    while console.console.pending:  # the pump takes delta 1 and waits on the link
        await asyncio.sleep(0)
    for n in range(2, 50):
        source.change(n)
    assert console.console.overflowed
    assert len(console.console.pending) <= 8  # memory stays bounded
    ws.open.set()
    await asyncio.sleep(0.05)
    source.change(50)
    await asyncio.sleep(0.05)
    pump.cancel()
    kinds = [frame["type"] for frame in ws.sent]
    assert kinds.count("snapshot") == 2
    last_snapshot = max(i for i, f in enumerate(ws.sent) if f["type"] == "snapshot")
    view = ws.sent[last_snapshot]["view"]
    seq = ws.sent[last_snapshot]["seq"]
    for frame in ws.sent[last_snapshot + 1:]:
        assert frame["seq"] == seq + 1
        seq = frame["seq"]
        apply_changes(view, frame["changes"])
    assert view == source.view
    svc = console.svc
    assert isinstance(svc, Svc)
    # Deltas 2..9 filled the queue, 10 overflowed it, 11..49 came while it was overflowed.
    assert (svc.frames("dropped"), svc.frames("resynced")) == (48, 1)
    assert svc.frames("sent") == len(ws.sent)
    assert console.console.resyncs == 1


async def test_a_gap_in_the_stream_resyncs_instead_of_skipping() -> None:
    hub = Hub()
    source = Source(hub)
    ws = FakeSocket()
    console = session(hub, source, ws)
    await console.start(None)
    pump = asyncio.create_task(console.pump())
    await sent(ws, 1)
    source.seq += 3  # three deltas that never reach this hub
    source.change(7)
    await sent(ws, 2)
    pump.cancel()
    assert [f["type"] for f in ws.sent] == ["snapshot", "snapshot"]
    assert ws.sent[-1]["seq"] == source.seq


async def test_publishing_never_waits_for_a_console() -> None:
    hub = Hub(queue_size=1)
    subs = [hub.subscribe("c") for _ in range(100)]
    for seq in range(1, 10):
        hub.publish_frame("c", Frame("e", seq, delta_frame("c", "e", seq, [])))
    assert all(s.console.overflowed and len(s.console.pending) <= 1 for s in subs)
    hub.unsubscribe(subs[0])
    assert hub.count("c") == 99


class FakeWriter:
    """A connection the hub writes to directly; records the order of everything a console got,
    whichever way it went (the `log` is shared with the socket's)."""

    def __init__(self, log: list[dict[str, Any]], encodings: list[str]) -> None:
        self.log = log
        self.encodings = encodings  # every encoding computed, across all writers
        self.paused = False
        self.writes = 0  # writes to the connection

    def can_write(self) -> bool:
        return not self.paused

    def write_text(self, text: str, encoded: dict[Hashable, bytes]) -> None:
        self.write_texts([(text, encoded)])

    def write_texts(self, frames: list[tuple[str, dict[Hashable, bytes]]]) -> None:
        self.writes += 1
        for text, encoded in frames:
            if "plain" not in encoded:
                self.encodings.append(text)
                encoded["plain"] = text.encode()
            self.log.append({**orjson.loads(encoded["plain"]), "direct": True})


def direct_session(hub: Hub, source: Source, encodings: list[str]) -> tuple[ConsoleSession,
                                                                            FakeSocket, FakeWriter]:
    ws = FakeSocket()
    writer = FakeWriter(ws.sent, encodings)
    console = session(hub, source, ws)
    console.sub.writer = writer
    return console, ws, writer


async def idle(console: ConsoleSession) -> None:
    """Until the console's pump waits with nothing to send (a liveness guard)."""
    async def until() -> None:
        while not console.sub.idle:
            await asyncio.sleep(0)
    await asyncio.wait_for(until(), 5)


async def idle_consoles(hub: Hub, source: Source, encodings: list[str], n: int,
                        ) -> tuple[list[tuple[ConsoleSession, FakeSocket, FakeWriter]],
                                   list[asyncio.Task[None]]]:
    """n started consoles written to directly, each idle, and their pumps."""
    consoles = [direct_session(hub, source, encodings) for _ in range(n)]
    pumps = []
    for console, _, _ in consoles:
        await console.start(None)
        pumps.append(asyncio.create_task(console.pump()))
    for console, _, _ in consoles:
        await idle(console)
    return consoles, pumps


async def test_idle_consoles_are_written_directly_with_one_encoding_per_delta() -> None:
    hub = Hub()
    source = Source(hub)
    encodings: list[str] = []
    consoles, pumps = await idle_consoles(hub, source, encodings, 3)
    for n in range(1, 4):
        source.change(n)
    assert len(encodings) == 3  # once per delta, not once per console
    assert hub.written == 9
    for console, ws, _ in consoles:
        assert [f["type"] for f in ws.sent] == ["snapshot", "delta", "delta", "delta"]
        assert all(f.get("direct") for f in ws.sent[1:])
        assert console.console.seq == 3 and not console.console.pending
    for pump in pumps:
        pump.cancel()


async def test_a_console_that_cannot_take_a_frame_now_gets_it_from_its_queue_in_order() -> None:
    hub = Hub()
    source = Source(hub)
    console, ws, writer = direct_session(hub, source, [])
    written: list[int] = []
    hub.on_written = written.append
    await console.start(None)
    pump = asyncio.create_task(console.pump())
    await idle(console)
    source.change(1)  # written directly
    writer.paused = True  # the connection's buffer is full
    source.change(2)
    source.change(3)
    writer.paused = False
    source.change(4)  # 2 and 3 are still queued: 4 must not overtake them
    await sent(ws, 5)
    await idle(console)
    source.change(5)  # the queue is empty again: direct
    pump.cancel()
    assert [(f["seq"], bool(f.get("direct"))) for f in ws.sent[1:]] == [
        (1, True), (2, False), (3, False), (4, False), (5, True)]
    view = ws.sent[0]["view"]
    for frame in ws.sent[1:]:
        apply_changes(view, frame["changes"])
    assert view == source.view
    assert written == [1, 1]
    svc = console.svc
    assert isinstance(svc, Svc)
    assert svc.frames("sent") == 4  # the snapshot and the three the pump sent


async def test_a_batch_of_deltas_reaches_each_idle_console_in_one_write() -> None:
    """`publish_frames`: the frames of one center go to an idle console with one write to its
    connection, each frame encoded once for all consoles; a console that cannot take them now
    gets them from its queue, in order, after any it still holds."""
    hub = Hub()
    source = Source(hub)
    encodings: list[str] = []
    consoles, pumps = await idle_consoles(hub, source, encodings, 3)
    _, paused_ws, paused = consoles[2]
    paused.paused = True
    source.changes(1, 2, 3)
    assert len(encodings) == 3  # once per delta, not once per console
    assert hub.written == 6 and hub.published == 3
    for console, ws, writer in consoles[:2]:
        assert writer.writes == 1
        assert [(f["seq"], bool(f.get("direct"))) for f in ws.sent[1:]] == [
            (1, True), (2, True), (3, True)]
        assert console.console.seq == 3
    paused.paused = False
    source.changes(4, 5)  # 1-3 may still be queued: 4 and 5 must not overtake them
    await sent(paused_ws, 6)
    assert [f["seq"] for f in paused_ws.sent[1:]] == [1, 2, 3, 4, 5]
    for _, ws, _ in consoles:
        view = ws.sent[0]["view"]
        for frame in ws.sent[1:]:
            apply_changes(view, frame["changes"])
        assert view == source.view
    for pump in pumps:
        pump.cancel()
