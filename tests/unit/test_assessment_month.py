"""A scripted month of 500 cases with known timings: the assessment's figures equal the numbers
counted by hand here; folding the history again gives the same numbers.

The events are the real aggregates' (Incident, SupervisionOrder, the SLA policy's due times);
only their timestamps are scripted, as a month of history would have them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from eventsourcing.domain import Aggregate

from domain.incident import Incident
from domain.sla_policy import StepClock
from domain.supervision_order import SupervisionOrder
from infra.loaders.assessment_weights import parse_weights_text
from infra.loaders.sla_policy import parse_text
from projections.assessment import Assessment, Weights, WeightsError, rows
from projections.envelope import Envelope

POLICY = parse_text("""
[default]
accept = "30m"
dispatch = "1h"
acknowledge = "2h"
resolve = "3d"
visit = "2d"
""")
T1, T2, DISTRICT, CITY = "t1", "t2", "d", "c"
ACTOR = {"user": "u", "role": "admin", "center": None}
NOV = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # 10:00 local (+08:00)
N = 500
WEIGHTS = Weights({"accept_on_time": 1, "dispatch_on_time": 1, "acknowledge_on_time": 1,
                   "resolve_on_time": 2, "visit_on_time": 1, "orders_met_on_time": 2,
                   "no_reopen": 1, "satisfaction": 2})


class Log:
    """Events with scripted times, in time order, as the notification log would hold them."""

    def __init__(self) -> None:
        self.items: list[tuple[datetime, int, Envelope]] = []

    def take(self, aggregate: Aggregate, at: datetime) -> None:
        for event in aggregate.collect_events():
            state = {k: v for k, v in vars(event).items()
                     if k not in ("originator_id", "originator_version", "timestamp")}
            data = orjson.loads(orjson.dumps(state, default=str))
            kind = f"{type(aggregate).__name__}.{type(event).__name__}"
            self.items.append((at, len(self.items), Envelope(
                0, str(event.originator_id), event.originator_version, kind, at.isoformat(),
                data)))

    def envelopes(self) -> list[Envelope]:
        out = []
        for n, (_, _, envelope) in enumerate(sorted(self.items, key=lambda x: x[:2]), start=1):
            envelope.notification_id = n
            out.append(envelope)
        return out


def late(i: int) -> dict[str, bool]:
    return {"accept": i % 5 == 0, "dispatch": i % 7 == 0, "acknowledge": i % 4 == 0,
            "resolve": i % 6 == 0, "visit": i % 8 == 0}


def open_case(i: int) -> bool:
    return i % 10 == 9  # acknowledged, never resolved


def satisfaction(i: int) -> int:
    return 2 if i % 9 == 0 else 3 + i % 3


def script_case(log: Log, i: int) -> None:
    lateness = late(i)
    t = NOV + timedelta(days=i % 20, minutes=i % 7)
    clock = lambda at: StepClock(POLICY, at)  # noqa: E731
    incident = Incident.report(source="hotline", category="noise", severity="routine", grid="g",
                               centers=[T1 if i % 2 == 0 else T2, DISTRICT, CITY],
                               description="d", actor=ACTOR, clock=clock(t))
    log.take(incident, t)
    t += timedelta(minutes=45 if lateness["accept"] else 10)
    incident.accept(actor=ACTOR, clock=clock(t))
    log.take(incident, t)
    t += timedelta(minutes=90 if lateness["dispatch"] else 20)
    dispatched = t
    department = "water" if i % 3 == 0 else "roads"
    incident.dispatch(actor=ACTOR, assignee={"kind": "department", "id": department},
                      clock=clock(t))
    log.take(incident, t)
    if lateness["acknowledge"]:  # the watcher escalates at the deadline, then it is done late
        deadline = str(incident.step_due)
        incident.escalate_overdue(actor=ACTOR, step="acknowledge", deadline=deadline,
                                  now=dispatched + timedelta(hours=2), every=timedelta(hours=1))
        log.take(incident, dispatched + timedelta(hours=2))
    t += timedelta(hours=3 if lateness["acknowledge"] else 1)
    incident.acknowledge(actor=ACTOR, clock=clock(t))
    log.take(incident, t)
    if open_case(i):
        return
    t = dispatched + timedelta(days=4 if lateness["resolve"] else 1)
    incident.resolve(actor=ACTOR, outcome="fixed", clock=clock(t))
    log.take(incident, t)
    t += timedelta(days=3 if lateness["visit"] else 1)
    incident.return_visit(actor=ACTOR, satisfaction=satisfaction(i), clock=clock(t))
    log.take(incident, t)
    if satisfaction(i) >= 3:
        t += timedelta(hours=1)
        incident.close(actor=ACTOR, clock=clock(t))
        log.take(incident, t)


def script_orders(log: Log) -> None:
    """20 orders to t1: 12 fulfilled on time, 5 overdue then fulfilled late, 3 left open."""
    for k in range(20):
        t = NOV + timedelta(days=k)
        order = SupervisionOrder.issue(actor=ACTOR, centers=[T1, DISTRICT, CITY], issuer=DISTRICT,
                                       addressee=T1, deadline=(t + timedelta(days=2)).isoformat(),
                                       note="n", now=t)
        log.take(order, t)
        if k < 12:
            order.fulfil(actor=ACTOR, what="done", now=t + timedelta(days=1))
            log.take(order, t + timedelta(days=1))
        elif k < 17:
            order.mark_overdue(actor=ACTOR, now=t + timedelta(days=2), escalate_to=CITY)
            log.take(order, t + timedelta(days=2))
            order.fulfil(actor=ACTOR, what="done", now=t + timedelta(days=3))
            log.take(order, t + timedelta(days=3))


def history() -> list[Envelope]:
    log = Log()
    for i in range(N):
        script_case(log, i)
    script_orders(log)
    return log.envelopes()


def by_hand(cases: list[int], steps: tuple[str, ...], orders: tuple[int, int, int] = (0, 0, 0),
            escalations_for: tuple[str, ...] = ("acknowledge",)) -> dict[str, Any]:
    """The figures of a unit credited with `steps` of `cases`, counted from the script."""
    done = [i for i in cases if not open_case(i)]
    expected: dict[str, Any] = {}
    lates = 0
    for step in ("accept", "dispatch", "acknowledge", "resolve", "visit"):
        if step not in steps:
            expected[f"{step}_on_time"] = None
            continue
        timed = done if step in ("resolve", "visit") else cases
        on_time = [i for i in timed if not late(i)[step]]
        lates += len(timed) - len(on_time)
        expected[f"{step}_on_time"] = round(len(on_time) / len(timed), 4)
    expected["late"] = lates
    expected["escalations"] = len([i for i in cases if late(i)["acknowledge"]])
    expected["resolved"] = len(done)
    reopens = len([i for i in done if satisfaction(i) <= 2])
    expected["reopens"] = reopens
    expected["reopen_rate"] = round(reopens / len(done), 4)
    expected["satisfaction"] = round(sum(satisfaction(i) for i in done) / len(done), 4)
    received, met, overdue = orders
    expected["orders_received"] = received
    expected["orders_met_on_time"] = round(met / received, 4) if received else None
    expected["orders_overdue"] = overdue
    rates = {m: expected[m] for m in ("accept_on_time", "dispatch_on_time", "acknowledge_on_time",
                                      "resolve_on_time", "visit_on_time", "orders_met_on_time")}
    rates["no_reopen"] = 1 - reopens / len(done)
    rates["satisfaction"] = (sum(satisfaction(i) for i in done) / len(done) - 1) / 4
    present = {m: v for m, v in rates.items() if v is not None}
    weight = sum(WEIGHTS.weights[m] for m in present)
    expected["score"] = round(100 * sum(WEIGHTS.weights[m] * v for m, v in present.items())
                              / weight, 2)
    return expected


def month_row(assessment: Assessment, unit: str, kind: str) -> dict[str, Any]:
    (row,) = rows(assessment, [(unit, kind)], "month", date(2026, 11, 1), date(2026, 11, 30),
                  WEIGHTS)
    return row


@pytest.fixture(scope="module")
def folded() -> tuple[Assessment, list[Envelope]]:
    events = history()
    assessment = Assessment()
    for event in events:
        assessment.apply(event)
    return assessment, events


ALL_STEPS = ("accept", "dispatch", "acknowledge", "resolve", "visit")


@pytest.mark.parametrize(("unit", "cases", "steps", "orders"), [
    (T1, [i for i in range(N) if i % 2 == 0], ALL_STEPS, (20, 12, 5)),
    (T2, [i for i in range(N) if i % 2 == 1], ALL_STEPS, (0, 0, 0)),
    (DISTRICT, list(range(N)), ALL_STEPS, (0, 0, 0)),
    ("department:water", [i for i in range(N) if i % 3 == 0], ("acknowledge", "resolve"),
     (0, 0, 0)),
    ("department:roads", [i for i in range(N) if i % 3 != 0], ("acknowledge", "resolve"),
     (0, 0, 0)),
])
def test_a_month_of_500_cases_gives_the_figures_counted_by_hand(
    folded: tuple[Assessment, list[Envelope]], unit: str, cases: list[int],
    steps: tuple[str, ...], orders: tuple[int, int, int],
) -> None:
    assessment, _ = folded
    kind = "department" if unit.startswith("department:") else "township"
    row = month_row(assessment, unit, kind)
    expected = by_hand(cases, steps, orders)
    assert row["intake"] == (0 if kind == "department" else len(cases))
    assert {k: row[k] for k in expected} == expected


def test_each_day_counts_its_own_intake(folded: tuple[Assessment, list[Envelope]]) -> None:
    assessment, _ = folded
    days = rows(assessment, [(DISTRICT, "district")], "day", date(2026, 11, 1),
                date(2026, 11, 30), WEIGHTS)
    assert [r["intake"] for r in days] == [len([i for i in range(N) if i % 20 == d])
                                           for d in range(20)] + [0] * 10
    weeks = rows(assessment, [(DISTRICT, "district")], "week", date(2026, 11, 1),
                 date(2026, 11, 30), WEIGHTS)
    assert weeks[0]["start"] == "2026-10-26" and sum(r["intake"] for r in weeks) == N


def test_folding_the_history_again_gives_the_same_numbers(
    folded: tuple[Assessment, list[Envelope]],
) -> None:
    assessment, events = folded
    again = Assessment()
    for event in events:
        again.apply(event)
    for event in events[:100]:  # redelivered: applied already, changes nothing
        again.apply(event)
    assert again.days == assessment.days
    assert again.cases.keys() == {e.originator_id for e in events
                                  if e.aggregate == "Incident"} - closed(events)


def closed(events: list[Envelope]) -> set[str]:
    return {e.originator_id for e in events if e.name == "Closed"}


@pytest.mark.parametrize(("text", "words"), [
    ("[weights]\naccept_on_time = 1\nspeed = 2\n", "line 3: key 'speed': unknown metric"),
    ("[weights]\naccept_on_time = -1\n", "line 2: key 'accept_on_time': expected a number"),
    ("[weights]\naccept_on_time = true\n", "line 2: key 'accept_on_time'"),
    ("[weights]\naccept_on_time = 0\n", "line 1: every weight is 0"),
    ("[scores]\nx = 1\n", "line 1: unknown section"),
    ("[weights]\nx = \n", "not valid TOML"),
])
def test_a_bad_weights_file_names_the_line(text: str, words: str) -> None:
    with pytest.raises(WeightsError) as refused:
        parse_weights_text(text, "weights.toml")
    assert words in str(refused.value)


def test_linkage_assessment_check(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from infra.cli.commands import main
    from infra.loaders.assessment_weights import DEFAULT_WEIGHTS_FILE, load_weights

    assert load_weights(DEFAULT_WEIGHTS_FILE).weights["resolve_on_time"] == 2
    good = CliRunner().invoke(main, ["assessment", "check", str(DEFAULT_WEIGHTS_FILE)])
    assert good.exit_code == 0 and "resolve_on_time=2" in good.output
    bad = tmp_path / "weights.toml"
    bad.write_text("[weights]\nresolve_on_time = 2\nspeed = 1\n")
    refused = CliRunner().invoke(main, ["assessment", "check", str(bad)])
    assert refused.exit_code == 1 and f"{bad} line 3: key 'speed'" in refused.output


def test_local_days_follow_the_offset_to_the_minute() -> None:
    from datetime import timezone

    from projections.assessment import local_day

    beijing = timezone(timedelta(hours=8))
    india = timezone(timedelta(hours=5, minutes=30))
    assert local_day("2026-11-30T15:59:59.999999+00:00", beijing) == "2026-11-30"
    assert local_day("2026-11-30T16:00:00.000001+00:00", beijing) == "2026-12-01"
    assert local_day("2026-11-30T18:29:59+00:00", india) == "2026-11-30"
    assert local_day("2026-11-30T18:30:00+00:00", india) == "2026-12-01"
    assert local_day("2026-12-01T00:30:00+08:00", beijing) == "2026-12-01"  # not UTC-suffixed
