"""The storage fast paths give exactly what the slow, generic paths give."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alert_rules import Rule, RuleSet

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
