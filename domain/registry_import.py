"""Importing registry rows (from `linkage registry import ... FILE.csv`): each row is checked by
the same rules as the HTTP commands, good rows are kept, a bad row is reported by its line number
and never half-written (each row is one aggregate, saved whole or not at all), and importing the
same rows twice changes nothing.

New residents are saved in batches (one transaction per batch): a batch that meets an existing
entry (a person registered before, by an earlier import or another user) is rolled back whole and
its rows are then run one by one through the ordinary command, which decides each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.incident import Actor, DomainError
from domain.registry import (
    RESIDENT_KINDS,
    AlreadyRegistered,
    Resident,
    Worker,
    check_choice,
    check_date,
    check_id_number,
    check_phone,
    check_text,
)
from domain.registry_service import RegistryService, parse_lead

COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # kind: (required columns, optional columns)
    "residents": (("id_number", "name", "phone", "household", "kind", "grid", "arrived"), ()),
    "workers": (("id", "name_zh", "name_en", "employment"),
                ("grid", "lead", "training_course", "training_date")),
    "parties": (("id", "kind", "name_zh", "name_en", "serves", "categories"), ()),
}
MAX_ROWS = 1_000_000
BATCH = 1000

Row = Mapping[str, str]


@dataclass
class ImportReport:
    saved: int = 0  # rows that changed the registry
    unchanged: int = 0  # rows the registry already held exactly
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)

    @property
    def rows(self) -> int:
        return self.saved + self.unchanged + len(self.errors)


def check_header(kind: str, header: Iterable[str]) -> str | None:
    """Why a file's header does not fit `kind`, or None."""
    if kind not in COLUMNS:
        return f"unknown registry {kind!r}; expected one of {', '.join(COLUMNS)}"
    required, optional = COLUMNS[kind]
    columns = list(header)
    missing = [c for c in required if c not in columns]
    if missing:
        return f"missing column {missing[0]!r}; a {kind} file has {', '.join(required)}" + (
            f" and optionally {', '.join(optional)}" if optional else "")
    unknown = [c for c in columns if c not in required and c not in optional]
    if unknown:
        return f"unknown column {unknown[0]!r}; expected {', '.join(required + optional)}"
    return None


def _words(value: str) -> list[str]:
    return [w for w in value.replace(";", " ").replace(",", " ").split() if w]


class Importer:
    """Runs rows of one kind through a RegistryService."""

    def __init__(self, service: RegistryService, actor: Actor, batch: int = BATCH) -> None:
        self.service = service
        self.actor = actor
        self.batch = batch

    def run(self, kind: str, rows: Iterable[tuple[int, Row]],
            progress: Callable[[int], None] = lambda n: None) -> ImportReport:
        report = ImportReport()
        if kind == "residents":
            self._residents(rows, report, progress)
            return report
        one = self._worker if kind == "workers" else self._party
        for line, row in _bounded(rows, report):
            self._one(line, report, partial(one, row))
            progress(1)
        return report

    @staticmethod
    def _one(line: int, report: ImportReport, call: Callable[[], bool]) -> None:
        try:
            changed = call()
        except DomainError as exc:
            report.errors.append((line, str(exc)))
            return
        if changed:
            report.saved += 1
        else:
            report.unchanged += 1

    def _party(self, row: Row) -> bool:
        _, saved = self.service.register_party(
            actor=self.actor, party_id=row["id"], kind=row["kind"],
            name={"zh": row["name_zh"], "en": row["name_en"]}, serves=_words(row["serves"]),
            categories=_words(row["categories"]))
        return saved

    def _worker(self, row: Row) -> bool:
        service, actor = self.service, self.actor
        grid = (row.get("grid") or "").strip()
        lead = parse_lead(row.get("lead") or "")
        course = (row.get("training_course") or "").strip()
        if grid:
            service.grid_units(grid)  # checked before anything is saved
        if course:
            check_text(course, "training_course")
            check_date(row.get("training_date") or "", "training_date")
        worker = service.worker(row["id"])
        changed = worker is None
        if worker is None:  # appointed, assigned and trained in one save: one aggregate
            worker = Worker.appoint(worker_id=row["id"], name={"zh": row["name_zh"],
                                                               "en": row["name_en"]},
                                    employment=row["employment"], actor=actor)
        elif worker.released:
            raise AlreadyRegistered(f"grid worker {row['id']!r} was released; a released id is "
                                    "not reused")
        if grid:
            changed |= worker.assign(grid=grid, lead=lead, actor=actor)
        if course:
            changed |= worker.complete_training(course=course, on=row.get("training_date"),
                                                actor=actor)
        if changed:
            service.save(worker)
        return changed

    def _checked_resident(self, row: Row) -> Resident:
        units, centers = self.service.grid_units(row["grid"])
        return Resident(
            id_number=check_id_number(row["id_number"]),
            name=check_text(row["name"], "name", 60), phone=check_phone(row["phone"]),
            household=check_text(row["household"], "household", 120),
            kind=check_choice(row["kind"], "kind", RESIDENT_KINDS), grid=row["grid"],
            units=units, centers=centers, arrived=check_date(row["arrived"], "arrived"),
            actor=self.actor)

    def _resident_command(self, row: Row) -> bool:
        _, saved = self.service.register_resident(
            actor=self.actor, id_number=row["id_number"], name=row["name"], phone=row["phone"],
            household=row["household"], kind=row["kind"], grid=row["grid"],
            arrived=row["arrived"])
        return saved

    def _residents(self, rows: Iterable[tuple[int, Row]], report: ImportReport,
                   progress: Callable[[int], None]) -> None:
        pending: list[tuple[int, Row, Aggregate]] = []
        seen: set[str] = set()

        def flush() -> None:
            if not pending:
                return
            try:
                self.service.app.save(*(aggregate for _, _, aggregate in pending))
                report.saved += len(pending)
            except IntegrityError:  # someone in the batch exists: decide each row by itself
                for line, row, _ in pending:
                    self._one(line, report, partial(self._resident_command, row))
            progress(len(pending))
            pending.clear()
            seen.clear()

        for line, row in _bounded(rows, report):
            try:
                resident = self._checked_resident(row)
            except DomainError as exc:
                report.errors.append((line, str(exc)))
                progress(1)
                continue
            if resident.id_number in seen:  # twice in one batch: let the command decide
                flush()
            pending.append((line, row, resident))
            seen.add(resident.id_number)
            if len(pending) >= self.batch:
                flush()
        flush()


def _bounded(rows: Iterable[tuple[int, Row]], report: ImportReport) -> Iterator[tuple[int, Row]]:
    for count, (line, row) in enumerate(rows):
        if count >= MAX_ROWS:
            report.errors.append((line, f"the file has more than {MAX_ROWS} rows; the rest "
                                  "was not imported (split the file)"))
            return
        if None in row or any(v is None for v in row.values()):
            report.errors.append((line, "the row has a different number of fields than the "
                                  "header"))
            continue
        yield line, row
