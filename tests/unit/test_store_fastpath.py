"""The storage fast paths give exactly what the slow, generic paths give."""

from __future__ import annotations

from uuid import UUID, uuid5

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alert_rules import Rule, RuleSet
from domain.camera_alert import ALERT_NAMESPACE, alert_id

LABELS = ("person", "car", "fire", "smoke", "flood")
KINDS = ("camera", "sensor", "cap")


def _may_match_by_scan(rules: RuleSet, label: str, kind: str) -> bool:
    return any((not r.labels or label in r.labels) and (not r.kinds or kind in r.kinds)
               for r in rules.rules)


_rule = st.builds(
    Rule,
    name=st.text(min_size=1, max_size=5),
    action=st.just("raise_priority"),
    labels=st.frozensets(st.sampled_from(LABELS), max_size=3),
    kinds=st.frozensets(st.sampled_from(KINDS), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_rule, max_size=5), st.sampled_from((*LABELS, "other")), st.sampled_from(KINDS))
def test_may_match_is_the_scan_over_rules(rules: list[Rule], label: str, kind: str) -> None:
    ruleset = RuleSet(tuple(rules))
    assert ruleset.may_match(label, kind) == _may_match_by_scan(ruleset, label, kind)


def test_rulesets_compare_by_their_rules() -> None:
    rule = Rule(name="a", action="raise_priority", labels=frozenset({"fire"}))
    assert RuleSet((rule,)) == RuleSet((rule,))
    assert not RuleSet().may_match("fire", "camera")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=200))
def test_alert_id_is_uuid5_of_feed_and_event_id(feed: str, event_id: str) -> None:
    expected = uuid5(ALERT_NAMESPACE, f"{feed}:{event_id}")
    got = alert_id.__wrapped__(feed, event_id)
    assert got == expected and got.version == 5 and str(got) == str(expected)
    assert hash(got) == hash(expected)


def test_alert_id_known_value() -> None:
    # Fixed forever: stored alerts are found again by this id.
    assert alert_id("frigate", "1718000000.123-abc") == uuid5(
        UUID("6c1f3a52-5d0e-4f53-9a63-3f1bd0c2a7e1"), "frigate:1718000000.123-abc")
