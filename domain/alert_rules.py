"""Alert rules: parsed from a decoded rules file, evaluated against an alert.

Pure code. ``parse_rules`` takes the decoded TOML/JSON (a dict with a ``rules`` list)
and raises :class:`RuleError` naming the rule and the problem. ``matching`` says
which rules an alert's current facts satisfy; time comes from the alert itself
(start, last seen, end), never from a clock.

A rule's conditions are all optional and all must hold:
``labels`` (any of), ``min_score`` (0..1, against the best score so far),
``zones`` (any of the alert's current zones), ``plates`` (a watch list),
``cameras``, ``grids``, ``min_duration`` (seconds from start to last seen: loitering),
``kinds`` (camera, sensor, cap).
Actions: ``open_incident`` (with ``severity`` and ``category``), ``raise_priority``
(with ``priority``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.camera_alert import KINDS, PRIORITIES
from domain.incident import SEVERITIES

ACTIONS = ("open_incident", "raise_priority")
_CONDITIONS = ("labels", "min_score", "zones", "plates", "cameras", "grids", "min_duration", "kinds")
_KEYS = frozenset(
    {"name", "action", "severity", "category", "priority", "description", *_CONDITIONS}
)


class AlertFacts(Protocol):
    """What rules look at: a CameraAlert, or the facts of one about to be raised."""

    label: str
    kind: str
    camera: str | None
    grid: str
    score: float | None
    top_score: float | None
    zones: list[str]
    plate: str | None
    false_positive: bool
    start_time: float
    last_seen: float
    rules_fired: list[str]


class RuleError(ValueError):
    """A rules file that cannot be used; the message names the rule and the problem."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: str
    labels: frozenset[str] = frozenset()
    min_score: float | None = None
    zones: frozenset[str] = frozenset()
    plates: frozenset[str] = frozenset()
    cameras: frozenset[str] = frozenset()
    grids: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    min_duration: float | None = None
    severity: str = "major"
    category: str = "camera_alert"
    priority: str = "high"
    description: str = ""

    def matches(self, alert: AlertFacts) -> bool:
        if alert.false_positive:
            return False
        if self.labels and alert.label not in self.labels:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.cameras and alert.camera not in self.cameras:
            return False
        if self.grids and alert.grid not in self.grids:
            return False
        if self.min_score is not None:
            best = max((s for s in (alert.score, alert.top_score) if s is not None), default=None)
            if best is None or best < self.min_score:
                return False
        if self.zones and not self.zones.intersection(alert.zones):
            return False
        if self.plates and (alert.plate is None or _plate(alert.plate) not in self.plates):
            return False
        return not (
            self.min_duration is not None
            and alert.last_seen - alert.start_time < self.min_duration
        )

    def reason(self, alert: AlertFacts) -> str:
        """Why it fired, in words an auditor can check against the alert."""
        parts = [f"label {alert.label}"]
        if self.min_score is not None:
            parts.append(f"score {alert.top_score} ≥ {self.min_score}")
        if self.zones:
            parts.append(f"in zone {', '.join(sorted(self.zones.intersection(alert.zones)))}")
        if self.plates:
            parts.append(f"plate {alert.plate} is watch-listed")
        if self.min_duration is not None:
            parts.append(f"present {alert.last_seen - alert.start_time:.0f}s > {self.min_duration:.0f}s")
        where = f"camera {alert.camera}" if alert.camera else f"grid {alert.grid}"
        return f"rule {self.name}: {'; '.join(parts)} ({where})"


_NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    # The (label, kind) pre-check as set lookups, built once from `rules`:
    _every: bool = field(init=False, repr=False, compare=False)  # a rule names no label nor kind
    _any_kind: frozenset[str] = field(init=False, repr=False, compare=False)  # labels, any kind
    _any_label: frozenset[str] = field(init=False, repr=False, compare=False)  # kinds, any label
    _kinds_of: dict[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kinds_of: dict[str, set[str]] = {}
        for r in self.rules:
            if r.labels and r.kinds:
                for label in r.labels:
                    kinds_of.setdefault(label, set()).update(r.kinds)
        init = object.__setattr__  # frozen: set the derived index once, here
        init(self, "_every", any(not r.labels and not r.kinds for r in self.rules))
        init(self, "_any_kind", frozenset(x for r in self.rules if not r.kinds for x in r.labels))
        init(self, "_any_label", frozenset(x for r in self.rules if not r.labels for x in r.kinds))
        init(self, "_kinds_of", {label: frozenset(k) for label, k in kinds_of.items()})

    def may_match(self, label: str, kind: str) -> bool:
        """False when no rule can match an alert of this label and kind (a cheap pre-check).

        The same as asking each rule whether its labels and kinds admit the alert, in O(1)."""
        return (
            self._every
            or label in self._any_kind
            or kind in self._any_label
            or kind in self._kinds_of.get(label, _NONE)
        )

    def matching(self, alert: AlertFacts) -> list[Rule]:
        """Rules the alert satisfies now and that have not fired on it yet."""
        return [r for r in self.rules if r.name not in alert.rules_fired and r.matches(alert)]


def _plate(text: str) -> str:
    return "".join(text.split()).upper()


def _strings(rule: str, key: str, value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"rule {rule!r}: {key} must be a non-empty list of strings; got {value!r}")
    return frozenset(value)


def _number(rule: str, key: str, value: Any, low: float, high: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RuleError(f"rule {rule!r}: {key} must be a number; got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise RuleError(f"rule {rule!r}: {key} must be {bound}; got {value}")
    return float(value)


def _choice(rule: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise RuleError(f"rule {rule!r}: {key} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def parse_rule(index: int, raw: Any) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleError(f"rule #{index + 1}: expected a table of settings; got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError(f"rule #{index + 1}: needs a non-empty string 'name'")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise RuleError(
            f"rule {name!r}: unknown setting(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(_KEYS))}"
        )
    action = _choice(name, "action", raw.get("action"), ACTIONS)
    if not any(key in raw for key in _CONDITIONS):
        raise RuleError(
            f"rule {name!r}: has no condition, so it would fire on every alert; "
            f"add one of {', '.join(_CONDITIONS)}"
        )
    fields: dict[str, Any] = {"name": name, "action": action}
    for key in ("labels", "zones", "cameras", "grids"):
        if key in raw:
            fields[key] = _strings(name, key, raw[key])
    if "plates" in raw:
        fields["plates"] = frozenset(_plate(p) for p in _strings(name, "plates", raw["plates"]))
    if "kinds" in raw:
        kinds = _strings(name, "kinds", raw["kinds"])
        for kind in kinds:
            _choice(name, "kinds", kind, KINDS)
        fields["kinds"] = kinds
    if "min_score" in raw:
        fields["min_score"] = _number(name, "min_score", raw["min_score"], 0.0, 1.0)
    if "min_duration" in raw:
        fields["min_duration"] = _number(name, "min_duration", raw["min_duration"], 0.0, None)
    if action == "open_incident":
        fields["severity"] = _choice(name, "severity", raw.get("severity", "major"), SEVERITIES)
        category = raw.get("category", "camera_alert")
        if not isinstance(category, str) or not category:
            raise RuleError(f"rule {name!r}: category must be a non-empty string; got {category!r}")
        fields["category"] = category
    else:
        for key in ("severity", "category"):
            if key in raw:
                raise RuleError(f"rule {name!r}: {key} only applies to action open_incident")
    if "priority" in raw or action == "raise_priority":
        fields["priority"] = _choice(name, "priority", raw.get("priority", "high"), PRIORITIES[1:])
    if "description" in raw:
        if not isinstance(raw["description"], str):
            raise RuleError(f"rule {name!r}: description must be a string")
        fields["description"] = raw["description"]
    return Rule(**fields)


def parse_rules(data: Any) -> RuleSet:
    """Validate decoded rules (``{"rules": [...]}``); raises RuleError naming the bad rule."""
    if not isinstance(data, Mapping):
        raise RuleError(f"a rules file must hold a table with a 'rules' list; got {type(data).__name__}")
    extra = sorted(set(data) - {"rules"})
    if extra:
        raise RuleError(f"unknown top-level setting(s) {', '.join(extra)}; expected only 'rules'")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError(f"'rules' must be a list of tables ([[rules]]); got {type(raw_rules).__name__}")
    rules = [parse_rule(i, raw) for i, raw in enumerate(raw_rules)]
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise RuleError(f"rule {rule.name!r}: the name is used twice; rule names must be unique")
        seen.add(rule.name)
    return RuleSet(tuple(rules))
