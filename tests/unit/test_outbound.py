"""Outbound alerts, pure parts: which events are told, subscriptions, signatures, CAP 1.2."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from infra.outbound.cap import InvalidCap, render, validate
from infra.outbound.deliverer import signature
from infra.outbound.kinds import Notice, classify
from infra.outbound.subscriptions import SubscriptionError, parse
from projections.envelope import Envelope

CENTERS = ["130706001", "130706", "130700"]


def envelope(kind: str, n: int = 7, **data: object) -> Envelope:
    return Envelope(n, "id-1", 1, kind, "2026-11-30T01:02:03.5+00:00",
                    {"centers": CENTERS, **data})


def test_only_the_subscribed_kinds_of_events_give_notices() -> None:
    assert classify(envelope("Incident.Reported", severity="routine")) is None
    major = classify(envelope("Incident.Reported", severity="major", category="noise"))
    assert major is not None and major.kinds == {"major_reported"}
    assert major.incident == "id-1" and major.centers == tuple(CENTERS)
    assert classify(envelope("Incident.Escalated", level="township", reason="major")) is None
    overdue = classify(envelope("Incident.Escalated", level="city", reason="overdue"))
    assert overdue is not None and overdue.kinds == {"escalated_city", "supervision_overdue"}
    fired = classify(envelope("CameraAlert.RuleFired", rule="r1", incident="inc-9",
                              alert={"grid": "g"}))
    assert fired is not None and fired.kinds == {"rule_fired"} and fired.incident == "inc-9"
    assert classify(envelope("Incident.Accepted")) is None


def test_subscriptions_are_checked_whole() -> None:
    base = {"name": "a", "url": "https://x.example/hook", "events": ["major_reported"],
            "secret": "s" * 16}
    [ok] = parse({"subscriptions": [base]})
    notice = classify(envelope("Incident.Reported", severity="major"))
    assert notice is not None and ok.wants(notice)
    scoped = parse({"subscriptions": [{**base, "centers": ["130702"]}]})[0]
    assert not scoped.wants(notice)
    for change, words in [({"url": "file:///etc/passwd"}, "http(s) URL"),
                          ({"events": ["storm_ended"]}, "unknown event kind"),
                          ({"events": []}, "events"),
                          ({"secret": "short"}, "secret"),
                          ({"format": "rss"}, "format"),
                          ({"extra": 1}, "extra")]:
        with pytest.raises(SubscriptionError, match=None) as caught:
            parse({"subscriptions": [{**base, **change}]})
        assert words in str(caught.value), caught.value
    heads = {**base, "events": ["tree_head_signed"]}
    [witness] = parse({"subscriptions": [heads]})
    assert notice is not None and not witness.wants(notice)  # no event is a tree head
    for change, words in [({"format": "cap"}, "JSON only (a signed tree head is no alert"),
                          ({"events": ["tree_head_signed", "rule_fired"]},
                           "of its own; got also 'rule_fired'"),
                          ({"centers": ["130702"]}, "takes no centers")]:
        with pytest.raises(SubscriptionError) as caught:
            parse({"subscriptions": [{**heads, **change}]})
        assert words in str(caught.value), caught.value
    with pytest.raises(SubscriptionError, match="used twice"):
        parse({"subscriptions": [base, base]})
    with pytest.raises(SubscriptionError, match="center 'x'"):
        parse({"subscriptions": [{**base, "centers": ["x"]}]}, known_centers={"130700"})


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    assert signature("k" * 16, body) == "sha256=" + hmac.new(b"k" * 16, body,
                                                            hashlib.sha256).hexdigest()


def test_cap_messages_validate_and_invalid_ones_are_refused() -> None:
    notice = Notice(12, frozenset({"escalated_city"}), "Incident.Escalated", "inc-1",
                    "2026-11-30T01:02:03.123456+00:00", tuple(CENTERS),
                    {"level": "city", "reason": "overdue"})
    document = render(notice, "linkage@example.org")
    assert b"<sent>2026-11-30T09:02:03+08:00</sent>" in document
    assert b"<incidents>inc-1</incidents>" in document
    broken = document.replace(b"+08:00</sent>", b"Z</sent>")  # CAP 1.2 refuses "Z"
    with pytest.raises(InvalidCap, match=r"not valid CAP 1\.2"):
        validate(broken)
    with pytest.raises(InvalidCap):
        validate(document.replace(b"<status>Actual</status>", b"<status>Maybe</status>"))


def raised(n: int, at: float, camera: str = "cam-1", grid: str = "g-1") -> Envelope:
    return Envelope(n, f"alert-{n}", 1, "CameraAlert.Raised", "2026-11-30T01:02:03+00:00",
                    {"centers": CENTERS, "camera": camera, "grid": grid, "label": "person",
                     "start_time": at})


def test_a_storm_is_told_once_when_its_window_reaches_the_threshold() -> None:
    from infra.outbound.kinds import StormWatch

    start = 1_800_000_000.0  # a multiple of 60: the 10 s and 60 s windows start together
    watch = StormWatch()
    assert [watch.observe(raised(n, start + n * 0.1)) for n in range(1, 10)] == [None] * 9
    saved = watch.state()  # a restart between scans keeps the count
    watch = StormWatch(saved)
    notice = watch.observe(raised(10, start + 1.0))
    assert notice is not None and notice.kinds == {"storm_started"}
    assert notice.subject == f"camera:cam-1:10@{int(start)}"
    assert (notice.facts["count"], notice.facts["threshold"]) == (10, 10)
    assert watch.observe(raised(11, start + 1.1)) is None  # the same storm
    assert watch.observe(raised(12, start - 20)) is None  # late: an earlier window
    # The next 10 s window starts from one: no storm until it reaches ten again.
    assert [watch.observe(raised(20 + n, start + 10 + n * 0.1)) for n in range(9)] == [None] * 9
    again = watch.observe(raised(29, start + 11))
    assert again is not None and again.subject == f"camera:cam-1:10@{int(start) + 10}"
    assert watch.observe(envelope("Incident.Reported", severity="major")) is None
    # Windows long past are not kept.
    watch.observe(raised(40, start + 10_000, camera="cam-2"))
    assert all(w[0] >= start + 10_000 - 180 for w in watch.state().values())
