"""Classifying validated rows against the stored students, and the import's result. Pure.

A row is matched on (name, parent_phone) inside the tenant:

- an active student matches: ``update`` if a given value differs, else ``unchanged``;
- only soft-deleted students match: ``restore`` the most recently deleted one (and apply the
  row's values);
- nothing matches: ``create``.

Rows that failed validation, repeat a key of the file or match several active students are
``failed``. The counts and row lists of :class:`ImportResult` are what the worker stores as the
job result, so :meth:`ImportResult.as_dict` is plain JSON.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domains.students import messages as m
from domains.students.messages import Message
from domains.students.rows import RawRow, RowFailure, StudentRow, ValidatedRows, jsonable

# Compared with the stored student and written on update/restore, in this order.
UPDATABLE_FIELDS = (
    "phone",
    "school_type",
    "high_school",
    "middle_school",
    "high_school_class",
    "major",
    "grade",
    "gender",
    "memo",
)
# How many updated/restored rows the result lists with their changed fields.
CHANGES_LISTED = 500


class Action(StrEnum):
    CREATE = "create"
    RESTORE = "restore"
    UPDATE = "update"
    UNCHANGED = "unchanged"


WRITE_ACTIONS = frozenset({Action.CREATE, Action.RESTORE, Action.UPDATE})


@dataclass(frozen=True, slots=True)
class ExistingStudent:
    """A stored student matching a row's key, with the fields an import may change."""

    id: int
    name: str
    parent_phone: str
    user_id: int | None
    ps_number: str
    deleted_at: dt.datetime | None
    values: Mapping[str, object]

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.parent_phone)


@dataclass(frozen=True, slots=True)
class PlannedRow:
    action: Action
    row: StudentRow
    student_id: int | None = None
    user_id: int | None = None
    ps_number: str | None = None  # of the matched student
    changes: Mapping[str, object] = field(default_factory=dict)

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(self.changes)


def changes_for(row: StudentRow, existing: ExistingStudent) -> dict[str, object]:
    """The given values of the row that differ from the stored ones (blank stored as '')."""
    changes: dict[str, object] = {}
    for name in UPDATABLE_FIELDS:
        new = getattr(row, name)
        if new is None:
            continue
        old = existing.values.get(name)
        if (old if old is not None else "") != new:
            changes[name] = new
    return changes


def classify(row: StudentRow, matches: Sequence[ExistingStudent]) -> PlannedRow | RowFailure:
    active = [s for s in matches if s.deleted_at is None]
    if len(active) > 1:
        # The partial unique index forbids this; a pure function does not rely on it.
        return RowFailure(row.row_number, row.name, (m.AMBIGUOUS_MATCH,))
    if active:
        student = active[0]
        changes = changes_for(row, student)
        action = Action.UPDATE if changes else Action.UNCHANGED
        return PlannedRow(action, row, student.id, student.user_id, student.ps_number, changes)
    deleted = [s for s in matches if s.deleted_at is not None]
    if deleted:
        # Several deletions of one key: the latest one is the record the academy last used.
        student = max(deleted, key=lambda s: (s.deleted_at, s.id))
        return PlannedRow(
            Action.RESTORE,
            row,
            student.id,
            student.user_id,
            student.ps_number,
            changes_for(row, student),
        )
    return PlannedRow(Action.CREATE, row)


@dataclass(slots=True)
class ImportPlan:
    planned: list[PlannedRow]
    failures: list[RowFailure]

    def count(self, action: Action) -> int:
        return sum(1 for p in self.planned if p.action is action)

    def writes(self) -> list[PlannedRow]:
        return [p for p in self.planned if p.action in WRITE_ACTIONS]


def plan_import(validated: ValidatedRows, matches: Iterable[ExistingStudent]) -> ImportPlan:
    by_key: dict[tuple[str, str], list[ExistingStudent]] = defaultdict(list)
    for student in matches:
        by_key[student.key].append(student)
    # Validation failures stay in ``validated``; the plan adds only classification failures.
    plan = ImportPlan(planned=[], failures=[])
    for row in validated.rows:
        outcome = classify(row, by_key.get(row.key, ()))
        if isinstance(outcome, RowFailure):
            plan.failures.append(outcome)
        else:
            plan.planned.append(outcome)
    return plan


def chunked(items: Sequence[PlannedRow], size: int) -> list[Sequence[PlannedRow]]:
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [items[i : i + size] for i in range(0, len(items), size)]


def format_ps_number(number: int) -> str:
    return f"{number:06d}"


def username_for(tenant_code: str, ps_number: str) -> str:
    """Login name of an imported student: unique because (tenant code, ps_number) is (ADR 0103)."""
    return f"{tenant_code}-s{ps_number}"


def row_ranges(row_numbers: Iterable[int]) -> list[list[int]]:
    """[[2, 501], [503, 900]]: committed rows in a compact, JSON-friendly form."""
    ranges: list[list[int]] = []
    for number in sorted(set(row_numbers)):
        if ranges and ranges[-1][1] == number - 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ranges


_COUNT_KEYS = {
    Action.CREATE: "created",
    Action.RESTORE: "restored",
    Action.UPDATE: "updated",
    Action.UNCHANGED: "unchanged",
}


@dataclass(slots=True)
class ImportResult:
    """What happened to every row; ``as_dict()`` is the stored, JSON-serialisable form."""

    dry_run: bool
    total_rows: int
    columns: Sequence[tuple[str, str]] = ()  # (field, header text) of the file, in file order
    done: list[PlannedRow] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    failed_values: dict[int, list[object]] = field(default_factory=dict)

    def record_done(self, planned: Iterable[PlannedRow]) -> None:
        self.done.extend(planned)

    def record_failures(
        self, failures: Iterable[RowFailure], raw_rows: Mapping[int, RawRow] | None = None
    ) -> None:
        for failure in failures:
            self.failures.append(failure)
            raw = (raw_rows or {}).get(failure.row_number)
            if raw is not None:
                self.failed_values[failure.row_number] = [
                    jsonable(raw.values.get(name)) for name, _ in self.columns
                ]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(_COUNT_KEYS.values(), 0)
        for planned in self.done:
            counts[_COUNT_KEYS[planned.action]] += 1
        counts["failed"] = len(self.failures)
        return counts

    def as_dict(self) -> dict[str, Any]:
        changed = [p for p in self.done if p.action in (Action.UPDATE, Action.RESTORE)]
        changed.sort(key=lambda p: p.row.row_number)
        failures = sorted(self.failures, key=lambda f: f.row_number)
        return {
            "dry_run": self.dry_run,
            "total_rows": self.total_rows,
            "counts": self.counts(),
            "failed_rows": [
                {**f.as_dict(), "values": self.failed_values.get(f.row_number)} for f in failures
            ],
            "columns": [label for _, label in self.columns],
            "changes": [
                {
                    "row": p.row.row_number,
                    "name": p.row.name,
                    "action": p.action.value,
                    "fields": list(p.changed_fields),
                }
                for p in changed[:CHANGES_LISTED]
            ],
            "changes_truncated": len(changed) > CHANGES_LISTED,
            # Rows whose create/restore/update is committed (none in a dry run).
            "committed_rows": []
            if self.dry_run
            else row_ranges(p.row.row_number for p in self.done if p.action in WRITE_ACTIONS),
        }


def write_failure(planned: PlannedRow, message: Message) -> RowFailure:
    return RowFailure(planned.row.row_number, planned.row.name, (message,))
