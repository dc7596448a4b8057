"""Helpers for distributed-mode tests: the deployment harness (shared with the benchmark, which
imports nothing from tests/) plus the assertions and a recording console."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from bench._stack import LINKAGE, multi_district_jurisdiction, wait_until
from bench._stack import Stack as Deployment
from projections.center_view import new_view
from projections.patch import View

__all__ = ["LINKAGE", "Console", "ReplaySteps", "Stack", "canonical", "multi_district_jurisdiction",
           "replay_steps", "wait_until"]


def canonical(view: View) -> bytes:
    """A view's bytes with sorted keys: key order in a JSON object carries no meaning."""
    return orjson.dumps(view, option=orjson.OPT_SORT_KEYS)


def digest(view: View) -> bytes:
    return hashlib.sha256(canonical(view)).digest()


@dataclass
class ReplaySteps:
    """What a replay says one center's view is after each event that changed it."""

    at: dict[int, tuple[int, bytes]]  # position -> (events that changed it up to there, digest)
    view: View  # after the last event

    def expected(self, position: int) -> tuple[int, bytes]:
        return self.at[position] if position else (0, digest(new_view(self.view["center"])))


def replay_steps(service: Any, centers: list[str]) -> dict[str, ReplaySteps]:
    """Fold the service's whole log event by event (the worker's way; the embedded runner's
    runs of alerts give the same views) and note every view each center passes through."""
    from infra.bootstrap import notification_reader
    from projections.center_view import new_center, step

    read = notification_reader(service)
    folds = {c: new_center(c) for c in centers}
    steps = {c: ReplaySteps({}, folds[c].view) for c in centers}
    position = 0
    while events := read(position, 1000):
        for event in events:
            for center in event.centers:
                if center in folds and step(folds[center], event):
                    at = steps[center].at
                    at[event.notification_id] = (len(at) + 1, digest(folds[center].view))
        position = events[-1].notification_id
    return steps


class Stack(Deployment):
    """A deployment with the checks the tests make against a replay."""

    def converged(self) -> bool:
        """Redis holds, for every center, as many deltas as a replay makes."""
        _, seqs = self.replay()
        state = self.redis_state()
        return all(state[c][1] == seqs[c] for c in self.centers)

    def wait_converged(self, timeout: float, what: str, *, views: bool = False) -> None:
        """wait_until(converged or views_converged); on timeout the error says which centers
        lag (replay vs Redis), which processes exited, and the tail of each log."""
        check = self.views_converged if views else self.converged
        try:
            wait_until(check, timeout, what=what)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnosis()}") from None

    def diagnosis(self) -> str:
        views, seqs = self.replay()
        state = self.redis_state()
        lines = [f"{c}: replay seq {seqs[c]} position {views[c]['position']}, Redis seq "
                 f"{state[c][1]} position {state[c][2].get('position')}"
                 for c in self.centers
                 if (state[c][1], state[c][2].get("position")) != (seqs[c],
                                                                    views[c]["position"])]
        for name, process in self.processes.items():
            tail = "\n    ".join(self.log(name).splitlines()[-40:])
            lines.append(f"--- {name} (exit code {process.poll()}):\n    {tail}")
        return "\n".join(lines)

    def views_converged(self) -> bool:
        """Redis holds, for every center, the view of a replay's position (the embedded runner
        folds a run of alerts into one delta, the worker gives each event its own: with camera
        alerts in the history the seqs differ, the views do not)."""
        views, _ = self.replay()
        state = self.redis_state()
        return all(state[c][2]["position"] == views[c]["position"] for c in self.centers)

    def changelog_records(self) -> int:
        """Records the worker group's table changelog holds (its partitions' end offsets)."""
        import asyncio

        from aiokafka import AIOKafkaConsumer, TopicPartition

        from infra.bootstrap import current_app_id

        settings = self.settings.with_(worker_id=self.env["LINKAGE_WORKER_ID"])
        topic = f"{current_app_id(settings)}-center-state-changelog"

        async def count() -> int:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka_bootstrap)
            await consumer.start()
            try:
                await consumer.topics()  # fetches the cluster's metadata
                partitions = consumer.partitions_for_topic(topic) or set()
                ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
                return sum(ends.values())
            finally:
                await consumer.stop()

        return asyncio.run(count())

    def assert_views_equal_to_replay(self) -> None:
        views, _ = self.replay()
        state = self.redis_state()
        for center in self.centers:
            assert canonical(state[center][2]) == canonical(views[center]), f"view of {center}"

    def assert_equal_to_replay(self) -> None:
        views, seqs = self.replay()
        state = self.redis_state()
        for center in self.centers:
            assert state[center][1] == seqs[center], f"seq of {center}"
            assert canonical(state[center][2]) == canonical(views[center]), f"view of {center}"



class Console:
    """A websocket console in a thread: records every frame, rebuilds the view as a browser does."""

    def __init__(self, url: str) -> None:

        self.url = url
        self.frames: list[dict[str, Any]] = []
        self.closed: int | None = None
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        resume: tuple[str, int] | None = None
        while not self._stop.is_set():
            try:
                with connect(self.url, open_timeout=10, max_size=None) as ws:
                    if resume is not None:
                        ws.send(orjson.dumps({"type": "resume", "epoch": resume[0],
                                              "seq": resume[1]}).decode())
                    while not self._stop.is_set():
                        try:
                            text = ws.recv(timeout=0.2)
                        except TimeoutError:
                            continue
                        frame = orjson.loads(text)
                        self.frames.append(frame)
                        if frame.get("type") in ("snapshot", "delta"):
                            resume = (frame["epoch"], frame["seq"])
            except ConnectionClosed as exc:
                self.closed = exc.rcvd.code if exc.rcvd else None
                time.sleep(0.2)
            except OSError as exc:
                self.errors.append(str(exc))
                time.sleep(0.2)

    def disconnect(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def state(self) -> tuple[str, int, View] | None:
        """(epoch, seq, view) after applying what arrived; checks deltas never skip a seq."""
        from projections.patch import apply_changes

        epoch, seq, view = "", -1, None
        for frame in list(self.frames):
            if frame["type"] == "snapshot":
                epoch, seq, view = frame["epoch"], frame["seq"], orjson.loads(
                    orjson.dumps(frame["view"]))
            elif frame["type"] == "delta":
                assert view is not None, "a delta before any snapshot"
                assert frame["epoch"] == epoch, "a delta from another epoch without a snapshot"
                assert frame["seq"] == seq + 1, f"gap: seq {seq} then {frame['seq']}"
                apply_changes(view, frame["changes"])
                seq = frame["seq"]
        return (epoch, seq, view) if view is not None else None

    def deltas(self) -> dict[int, str]:
        return {f["seq"]: orjson.dumps(f).decode() for f in self.frames if f["type"] == "delta"}
