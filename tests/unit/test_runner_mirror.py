"""The server's mirror of the runner child's views (infra/runner/runner_process.py), fed here by
hand with the messages a child sends: batches applied in order, deltas a lost message carried read
back from the view store, a restarted child's hello, and a reload when the store no longer holds
what was missed or the child rebuilt under another epoch."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from command_center.protocol import Frame
from infra.bootstrap import notification_reader
from infra.runner.embedded import EmbeddedRunner
from infra.runner.runner_process import (
    ACK,
    IDLE,
    WAKE,
    RunnerMirror,
    decode_message,
    encode_batch,
    encode_hello,
    follow_for_server,
)
from infra.store.view_store import MemoryViewStore
from tests.unit.test_properties import ACTOR, CENTERS, GRIDS, new_service


class Child:
    """What `runner_main` does around a runner: a hello at start, a message per batch."""

    def __init__(self, service: Any, store: MemoryViewStore) -> None:
        self.runner = EmbeddedRunner(notification_reader(service), store, CENTERS)
        self.pending: list[tuple[str, Frame]] = []
        self.runner.deliver_with(self.pending.extend)

    def hello(self) -> bytes:
        return encode_hello(self.runner.epoch, self.runner.position, self.runner.seqs)

    def batch(self) -> bytes:
        assert self.runner.process_batch()
        message = encode_batch(self.runner.epoch, self.runner.position, self.pending)
        self.pending.clear()
        return message


def report(service: Any, n: int, grid: str | None = None) -> None:
    for i in range(n):
        service.report(actor=ACTOR, grid=grid or sorted(GRIDS)[i % len(GRIDS)], source="hotline", category="noise",
                       severity="routine", description=f"d{i}", location=None, reporter=None)


def canonical(views: dict[str, Any]) -> bytes:
    return orjson.dumps({c: views.get(c) for c in CENTERS}, option=orjson.OPT_SORT_KEYS)


def setup(keep: int = 1000) -> tuple[Any, MemoryViewStore, RunnerMirror, Child]:
    service, store = new_service(), MemoryViewStore(keep=keep)
    mirror = RunnerMirror.taking(EmbeddedRunner(notification_reader(service), store, CENTERS),
                                 None)
    return service, store, mirror, Child(service, store)


def test_batches_applied_in_order_give_the_childs_views_and_history() -> None:
    service, _, mirror, child = setup()
    mirror.receive(child.hello())
    for _ in range(3):
        report(service, 2)
        mirror.receive(child.batch())
    assert canonical(mirror.views) == canonical(child.runner.views)
    assert mirror.seqs == child.runner.seqs and mirror.position == child.runner.position
    assert mirror.batches == 3 and mirror.filled == 0 and mirror.reloads == 0
    # A console that saw seq 1 of the city gets exactly the rest from the mirror's history.
    frames = mirror.history("city", mirror.epoch, 1)
    assert frames is not None and [f.seq for f in frames] == list(range(2, mirror.seqs["city"] + 1))
    assert frames == list(child.runner.history_frames["city"])[1:]


def test_a_lost_message_is_read_back_from_the_view_store() -> None:
    service, _, mirror, child = setup()
    report(service, 2, "g-a1")
    mirror.receive(child.batch())
    report(service, 3, "g-a1")
    child.batch()  # committed by the child, never heard of
    report(service, 1, "g-a1")  # the same centers: their next frames skip the lost ones
    mirror.receive(child.batch())
    assert mirror.filled > 0 and mirror.reloads == 0
    assert canonical(mirror.views) == canonical(child.runner.views)
    assert mirror.seqs == child.runner.seqs
    frames = mirror.history("city", mirror.epoch, 0)
    assert frames is not None and [f.seq for f in frames] == list(range(1, mirror.seqs["city"] + 1))


def test_a_restarted_childs_hello_brings_the_mirror_up_to_what_it_committed() -> None:
    service, store, mirror, child = setup()
    report(service, 2)
    mirror.receive(child.batch())
    report(service, 2)
    child.batch()  # lost with the child
    child.runner.stop()
    again = Child(service, store)
    mirror.receive(again.hello())
    assert canonical(mirror.views) == canonical(again.runner.views)
    assert mirror.position == again.runner.position and mirror.reloads == 0
    report(service, 1)
    mirror.receive(again.batch())
    assert canonical(mirror.views) == canonical(again.runner.views)


def test_what_the_store_no_longer_holds_reloads_the_views_and_marks_each_center() -> None:
    service, _, mirror, child = setup(keep=2)
    report(service, 1)
    mirror.receive(child.batch())
    for _ in range(5):  # lost, and trimmed from the store by a checkpoint
        report(service, 1)
        child.batch()
    child.runner.checkpoint()
    report(service, 1)
    mirror.receive(child.batch())
    assert mirror.reloads == 1
    assert canonical(mirror.views) == canonical(child.runner.views)
    assert mirror.seqs == child.runner.seqs


def test_a_child_that_rebuilt_under_another_epoch_is_taken_whole() -> None:
    service, store, mirror, child = setup()
    report(service, 3)
    mirror.receive(child.batch())
    old = mirror.epoch
    child.runner.rebuild()  # what a child finding inconsistent stored views does
    again = Child(service, store)
    assert again.runner.epoch != old
    mirror.receive(again.hello())
    assert mirror.epoch == again.runner.epoch and mirror.reloads == 1
    assert canonical(mirror.views) == canonical(again.runner.views)
    assert mirror.history("city", old, 1) is None  # a console of the old epoch gets a snapshot


def test_a_batch_crosses_the_pipe_with_its_texts_as_sent() -> None:
    """Texts with non-ASCII characters and quotes come back byte for byte, each in its place."""
    frames = [("city", Frame("e", 7, '{"type":"delta","changes":[["set",["a"],"网格 \\"x\\""]]}')),
              ("town-a", Frame("e", 3, '{"type":"delta","changes":[]}'))]
    message = decode_message(encode_batch("e", 42, frames))
    assert message["p"] == 42 and message["e"] == "e"
    assert [(c, s, t.decode()) for c, s, t in message["f"]] == [
        (c, f.seq, f.text) for c, f in frames]
    assert decode_message(encode_hello("e", 5, {"city": 2})) == {
        "hello": "e", "p": 5, "seqs": {"city": 2}}


def test_a_batch_of_another_epoch_reloads_the_views_first() -> None:
    """The child rebuilt under a new epoch and its hello never applied: its next batch names the
    epoch, and the mirror takes the store's views rather than applying new deltas to old ones."""
    service, store, mirror, child = setup()
    report(service, 3)
    mirror.receive(child.batch())
    child.runner.rebuild()
    again = Child(service, store)  # its hello is lost
    report(service, 2)
    mirror.receive(again.batch())
    assert mirror.reloads == 1 and mirror.epoch == again.runner.epoch
    assert canonical(mirror.views) == canonical(again.runner.views)
    assert mirror.seqs == again.runner.seqs


def test_a_message_that_fails_to_apply_makes_the_next_reload() -> None:
    service, _, mirror, child = setup()
    report(service, 2)
    mirror.receive(child.batch())
    report(service, 2)
    broken = child.batch()[:-3]  # a frame text cut short: its JSON does not parse
    try:
        mirror.receive(broken)
    except orjson.JSONDecodeError:
        pass
    else:
        raise AssertionError("a cut frame applied")
    report(service, 1)
    mirror.receive(child.batch())
    assert mirror.reloads == 1
    assert canonical(mirror.views) == canonical(child.runner.views)
    assert mirror.seqs == child.runner.seqs


def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """A liveness guard, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_one_wake_is_outstanding_at_most_and_an_answer_sends_the_due_one() -> None:
    """However many commits happen while the child has not answered a wake, one more wake
    follows its answer: the pipe never fills, so no send to it blocks."""
    _, _, mirror, _ = setup()
    ours, childs = multiprocessing.Pipe()
    mirror.attach(ours)  # the attach wakes the new child
    try:
        assert childs.poll(5) and childs.recv_bytes() == WAKE
        for _ in range(1000):
            mirror.wake()
        assert not childs.poll(0.3)  # all due, none sent: the first is unanswered
        childs.send_bytes(IDLE)  # the child answers
        assert childs.poll(5) and childs.recv_bytes() == WAKE
        assert not childs.poll(0.3)
    finally:
        mirror.attach(None)
        childs.close()


def test_the_childs_loop_retries_a_failed_batch_from_its_committed_state() -> None:
    """A view-store commit that fails once: nothing of the batch is sent, the runner restores
    what it committed and says hello again, and the next batch brings the mirror to the views a
    fresh fold gives; the exit checkpoints a consistent state."""
    service, store, mirror, _ = setup()
    runner = EmbeddedRunner(notification_reader(service), store, CENTERS)
    commit, failures = store.commit, [1]

    def flaky(*args: Any, **kwargs: Any) -> None:
        if failures:
            failures.pop()
            raise RuntimeError("database is locked")
        commit(*args, **kwargs)

    store.commit = flaky  # type: ignore[method-assign]
    ours, childs = multiprocessing.Pipe()
    stop = threading.Event()
    loop = threading.Thread(target=follow_for_server, args=(runner, childs, stop.is_set))
    heard: list[bytes] = []

    def serve() -> None:  # the server's side: apply, ack each batch
        while not stop.is_set():
            if ours.poll(0.05):
                data = ours.recv_bytes()
                heard.append(data[:1])
                mirror.receive(data)
                if data[:1] == b"B":
                    ours.send_bytes(ACK)

    server = threading.Thread(target=serve)
    report(service, 4)
    loop.start()
    server.start()
    try:
        ours.send_bytes(WAKE)
        until(lambda: mirror.position == (service.recorder.max_notification_id() or 0),
              "the mirror caught up after the retry")
        report(service, 2)
        ours.send_bytes(WAKE)
        until(lambda: mirror.position == service.recorder.max_notification_id(),
              "the next batch")
    finally:
        stop.set()
        loop.join(10)
        server.join(10)
    assert heard.count(b"{") == 2  # the first hello, and the one after the failure
    fresh = EmbeddedRunner(notification_reader(service), MemoryViewStore(), CENTERS)
    fresh.catch_up()
    assert canonical(mirror.views) == canonical(fresh.views)
    restarted = EmbeddedRunner(notification_reader(service), store, CENTERS)
    assert restarted.epoch == runner.epoch and restarted.position == runner.position
