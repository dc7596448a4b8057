"""The console protocol alone, in plain Python: no socket, no event loop."""

from __future__ import annotations

from typing import Any

import orjson

from command_center.protocol import (
    CLOSE_POLICY,
    CLOSE_TOO_SLOW,
    PONG,
    Close,
    Console,
    Cursor,
    Frame,
    Hello,
    Invalid,
    Ping,
    Resume,
    Send,
    SnapshotRequest,
    Step,
    TakeSnapshot,
    delta_frame,
    missed,
    parse,
)
from projections.center_view import new_view


def frame(seq: int, epoch: str = "e1", center: str = "c") -> Frame:
    return Frame(epoch, seq, delta_frame(center, epoch, seq, [{"op": "set", "path": ["n"],
                                                               "value": seq}]))


def history(first: int, last: int, epoch: str = "e1") -> list[Frame]:
    return [frame(seq, epoch) for seq in range(first, last + 1)]


def steps(console: Console, snapshot_at: tuple[str, int] = ("e1", 10)) -> list[dict[str, Any]]:
    """Run the console until idle, taking snapshots at `snapshot_at`: the frames it sends."""
    out: list[dict[str, Any]] = []
    while (step := console.next_step()) is not None:
        if isinstance(step, Close):
            out.append({"type": "close", "code": step.code, "cause": step.cause})
            break
        if isinstance(step, TakeSnapshot):
            epoch, seq = snapshot_at
            out.append(orjson.loads(console.snapshot(epoch, seq, new_view("c"))))
        else:
            assert isinstance(step, Send)
            out.append(orjson.loads(step.text))
    return out


def kinds(frames: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(f["type"], f.get("seq", f.get("code"))) for f in frames]


# -- resume --------------------------------------------------------------------------------


def test_resume_inside_the_history_gets_exactly_the_missed_deltas() -> None:
    console = Console("c")
    resume = console.start(Resume("e1", 7))
    assert resume == Resume("e1", 7)
    console.resumed(resume, missed(("e1", 10), "e1", 7, history(1, 10)))
    assert kinds(steps(console)) == [("delta", 8), ("delta", 9), ("delta", 10)]


def test_resume_at_the_current_seq_sends_nothing_until_the_next_delta() -> None:
    console = Console("c")
    resume = console.start(Resume("e1", 10))
    assert resume is not None
    console.resumed(resume, missed(("e1", 10), "e1", 10, history(1, 10)))
    assert steps(console) == []
    console.offer(frame(11))
    assert kinds(steps(console)) == [("delta", 11)]


def test_resume_past_the_history_gets_a_snapshot() -> None:
    # The center holds deltas 6..10 only (older ones trimmed): a console at 3 cannot resume.
    assert missed(("e1", 10), "e1", 3, history(6, 10)) is None
    console = Console("c")
    resume = console.start(Resume("e1", 3))
    assert resume is not None
    console.resumed(resume, None)
    assert kinds(steps(console)) == [("snapshot", 10)]


def test_resume_from_the_future_or_a_hole_in_the_history_is_refused() -> None:
    assert missed(("e1", 10), "e1", 12, history(1, 10)) is None
    assert missed(("e1", 10), "e1", 5, [*history(6, 7), *history(9, 10)]) is None
    assert missed(("e1", 10), "e1", 5, history(6, 9)) is None  # the last delta is missing


def test_resume_from_another_epoch_gets_a_snapshot_of_this_one() -> None:
    assert missed(("e2", 4), "e1", 3, history(1, 4, "e2")) is None
    console = Console("c")
    resume = console.start(Resume("e1", 3))
    assert resume is not None
    console.resumed(resume, None)
    assert steps(console, ("e2", 4))[0] | {"view": None} == {
        "type": "snapshot", "center": "c", "epoch": "e2", "seq": 4, "view": None}


def test_live_deltas_queued_while_resuming_are_not_sent_twice() -> None:
    console = Console("c")
    console.offer(frame(9))  # the fan-out was faster than the history read
    console.offer(frame(10))
    resume = console.start(Resume("e1", 7))
    assert resume is not None
    console.resumed(resume, history(8, 9))
    console.offer(frame(11))
    assert kinds(steps(console)) == [("delta", 8), ("delta", 9), ("delta", 10), ("delta", 11)]


# -- epochs, gaps, resync ---------------------------------------------------------------------


def started(seq: int = 10, epoch: str = "e1") -> Console:
    console = Console("c")
    console.start(Hello())
    assert kinds(steps(console, (epoch, seq))) == [("snapshot", seq)]
    return console


def test_a_delta_of_another_epoch_resyncs_and_never_mixes_epochs() -> None:
    console = started()
    console.offer(frame(11, "e2"))
    console.offer(frame(12, "e2"))  # queued frames are covered by the snapshot taken next
    sent = steps(console, ("e2", 12))
    console.offer(frame(12, "e2"))
    console.offer(frame(13, "e2"))
    sent += steps(console)
    assert kinds(sent) == [("snapshot", 12), ("delta", 13)]
    assert {f["epoch"] for f in sent} == {"e2"}


def test_a_gap_resyncs_instead_of_skipping() -> None:
    console = started()
    console.offer(frame(11))
    console.offer(frame(14))  # 12 and 13 never arrived
    assert kinds(steps(console, ("e1", 14))) == [("delta", 11), ("snapshot", 14)]
    console.offer(frame(15))
    assert kinds(steps(console)) == [("delta", 15)]


def test_repeated_and_old_deltas_are_skipped() -> None:
    console = started()
    for seq in (9, 10, 11, 11, 10, 12):
        console.offer(frame(seq))
    assert kinds(steps(console)) == [("delta", 11), ("delta", 12)]


def test_a_marker_resyncs_a_console_that_is_elsewhere_only() -> None:
    console = started()
    console.offer(Frame("e1", 10, ""))  # the source is where this console is
    assert steps(console) == []
    console.offer(Frame("e1", 13, ""))  # the source moved on and this console missed it
    assert kinds(steps(console, ("e1", 13))) == [("snapshot", 13)]


def test_asking_again_resyncs() -> None:
    console = started()
    console.receive(SnapshotRequest())
    assert kinds(steps(console, ("e1", 12))) == [("snapshot", 12)]
    console.receive(Resume("e1", 12))
    assert kinds(steps(console, ("e1", 12))) == [("snapshot", 12)]


# -- overflow -----------------------------------------------------------------------------------


def test_a_console_that_falls_behind_gets_a_snapshot_then_is_closed_when_it_keeps_falling_behind(
) -> None:
    console = Console("c", queue_size=4, max_overflows=2)
    console.start(None)
    assert kinds(steps(console)) == [("snapshot", 10)]
    seq = 10
    for resync in range(1, 3):
        for _ in range(6):  # more than the queue holds, before the console is sent anything
            seq += 1
            console.offer(frame(seq))
        assert console.overflowed and len(console.pending) <= 4
        assert kinds(steps(console, ("e1", seq))) == [("snapshot", seq)]
        assert console.resyncs == resync
    for _ in range(6):
        seq += 1
        console.offer(frame(seq))
    assert steps(console) == [{"type": "close", "code": CLOSE_TOO_SLOW, "cause": "too_slow"}]


def test_a_console_that_asks_faster_than_it_reads_falls_behind_too() -> None:
    console = Console("c", queue_size=4, max_overflows=0)
    console.start(None)
    steps(console)
    for _ in range(5):
        console.receive(Ping())
    assert console.overflowed
    assert steps(console) == [{"type": "close", "code": CLOSE_TOO_SLOW, "cause": "too_slow"}]


def test_a_queue_that_never_fills_never_resyncs() -> None:
    console = Console("c", queue_size=4, max_overflows=0)
    console.start(None)
    steps(console)
    for seq in range(11, 111):
        console.offer(frame(seq))
        assert kinds(steps(console)) == [("delta", seq)]
    assert console.resyncs == 0


# -- closing ------------------------------------------------------------------------------------


def test_a_send_that_times_out_closes_the_console_as_too_slow() -> None:
    console = started()
    close = console.send_timed_out()
    assert (close.code, close.cause) == (CLOSE_TOO_SLOW, "send_timeout")
    assert console.next_step() == close
    console.offer(frame(11))
    assert console.pending == ()


def test_a_close_goes_before_anything_else() -> None:
    console = started()
    console.offer(frame(11))
    console.receive(Ping())
    console.close(CLOSE_POLICY, "message rate limit exceeded", "rate_limit")
    assert console.next_step() == Close(CLOSE_POLICY, "message rate limit exceeded", "rate_limit")


def test_only_closes_of_the_server_runtime_are_counted() -> None:
    assert Console.disconnected(1011, "keepalive ping timeout") == "ping_timeout"
    assert Console.disconnected(1009, "") == "too_big"
    assert Console.disconnected(1000, "") is None
    assert Console.disconnected(1001, "going away") is None


# -- client messages -------------------------------------------------------------------------


def test_client_messages_parse() -> None:
    assert parse('{"type":"hello"}') == Hello()
    assert parse('{"type":"ping"}') == Ping()
    assert parse('{"type":"snapshot"}') == SnapshotRequest()
    assert parse('{"type":"resume","epoch":"e1","seq":0}') == Resume("e1", 0)


def test_a_resume_without_a_usable_position_is_answered_with_a_snapshot() -> None:
    for text in ('{"type":"resume"}', '{"type":"resume","epoch":"e1","seq":-1}',
                 '{"type":"resume","epoch":"e1","seq":true}',
                 '{"type":"resume","epoch":1,"seq":3}', '{"type":"resume","epoch":"e","seq":"3"}'):
        assert parse(text) == SnapshotRequest(), text


def test_bad_messages_say_what_was_wrong_and_what_was_expected() -> None:
    not_json, not_object, unknown = (parse(t) for t in ("{", "[1]", '{"type":"subscribe"}'))
    assert isinstance(not_json, Invalid) and "not JSON" in not_json.detail
    assert isinstance(not_object, Invalid) and "got a JSON array" in not_object.detail
    assert isinstance(unknown, Invalid) and "'subscribe'" in unknown.detail
    for invalid in (not_json, not_object, unknown):
        assert "hello, resume, ping or snapshot" in invalid.detail


def test_the_first_frame_is_a_snapshot_then_replies_in_order() -> None:
    console = Console("c")
    console.start(Ping())
    console.receive(parse("nonsense"))
    sent = steps(console)
    assert [f["type"] for f in sent] == ["snapshot", "pong", "error"]
    assert "not JSON" in sent[2]["detail"]
    console.receive(Ping())
    assert console.next_step() == Send(PONG)


def test_nothing_is_sent_before_the_first_message_decides_how_to_start() -> None:
    console = Console("c")
    console.offer(frame(1))
    step: Step | None = console.next_step()
    assert step is None


# -- the fan-out cursor ----------------------------------------------------------------------


def test_the_cursor_drops_repeats_and_hands_on_what_a_reconnection_missed() -> None:
    cursor = Cursor()
    assert cursor.accept("c", frame(1))
    assert not cursor.accept("c", frame(1))
    assert cursor.accept("c", frame(2))
    assert cursor.caught_up("c", history(2, 4), None) == history(3, 4)
    # Not all held (or nothing seen yet): a marker at the source's position, once.
    assert cursor.caught_up("c", None, ("e1", 9)) == [Frame("e1", 9, "")]
    assert not cursor.accept("c", frame(9))
    assert cursor.caught_up("d", None, ("", 0)) == []
    assert cursor.accept("c", frame(1, "e2"))  # a new epoch starts over


def test_a_delta_is_sent_at_once_only_when_it_is_the_next_one_and_nothing_waits_before_it() -> None:
    console = started(10)
    assert console.send_now(frame(11))
    assert console.seq == 11 and console.next_step() is None  # counted as sent, not queued
    assert not console.send_now(frame(13))  # a gap: the queue's rules resync
    assert not console.send_now(frame(11))  # a repeat
    assert not console.send_now(frame(12, "e2"))  # another epoch
    assert not console.send_now(Frame("e1", 12, ""))  # a marker
    assert console.seq == 11
    console.offer(frame(12))
    assert not console.send_now(frame(13))  # 12 is queued: 13 must not overtake it
    console.receive(Ping())
    assert [console.next_step(), console.next_step()] == [Send(PONG), Send(frame(12).text)]
    assert console.send_now(frame(13))
    console.receive(SnapshotRequest())
    assert not console.send_now(frame(14))  # a snapshot is due first
    console.close(CLOSE_POLICY, "rate", "rate_limit")
    assert not console.send_now(frame(14))


def test_nothing_is_sent_at_once_before_the_first_message_decides_how_to_start() -> None:
    console = Console("c")
    assert not console.send_now(frame(1))
    console.start(Resume("e1", 10))
    console.resumed(Resume("e1", 10), history(11, 12))
    assert not console.send_now(frame(13))  # the history a resume asked for goes first
