"""The peer of the student import: django-import-export (4.x) in bulk mode.

A ``ModelResource`` for ``Student`` configured the way its documentation recommends for
large imports (docs/bulk_import.rst): ``use_bulk`` with batches of 500, ``skip_diff`` and
``skip_html_diff`` (no copy and diff per row), ``use_transactions`` (one transaction, no
savepoint per row in bulk mode), ``import_id_fields`` = the natural key. The tenant is not a
column: ``get_queryset`` is the tenant's active students and ``init_instance`` sets it, so only
the benchmark tenant is read or written and the tenant's ``ForeignKeyWidget`` (a SELECT per
row) is not involved. Rows go through our own ``normalize_row`` in ``before_import_row``, so
both importers store exactly the same student values (the benchmark checks it).

What the peer does NOT do that ours does, per new row: a ``User`` (with the one password hash),
a tenant membership and a parent; student numbers from the tenant's counter (the peer gets
sequential placeholders); restore of soft-deleted students; a per-row replay when a batch is
refused (in bulk mode an error is a base error of the whole batch, not linked to a row); the
import lock. The fair comparison is the student rows alone.

Variants:

- ``shipped``: the library's ``ModelInstanceLoader``: one ``SELECT … WHERE name = … AND
  parent_phone = …`` per row. Its ``CachedInstanceLoader`` supports a single id field only.
- ``cached``: plus ``KeyCachedInstanceLoader`` below, a composite-key cache: one SELECT for all
  keys of the dataset (what a user of the library would write for this key).
- ``force_init``: ``force_init_instance = True``: no lookup at all; only correct when every row
  is new, so it runs in the "new" scenario only, as the peer's best case.

``skip_unchanged = True`` is set but has no effect: the library only compares a row with the
stored instance when ``skip_diff`` is False (``Resource.skip_row``). It does not matter here:
every existing row of the benchmark has a changed grade.
"""

from __future__ import annotations

from itertools import count
from typing import Any

from import_export import fields, resources, widgets
from import_export.instance_loaders import ModelInstanceLoader

from domains.students.models import Student
from domains.students.plan import UPDATABLE_FIELDS
from domains.students.rows import RawRow, RowFailure, normalize_name, normalize_row

# Written by the peer for new students; the seeded and our numbers are digits only.
PS_NUMBER_PREFIX = "X"


class KeyCachedInstanceLoader(ModelInstanceLoader):
    """The tenant's active students with the dataset's names, loaded in one query."""

    def __init__(self, resource: Any, dataset: Any = None) -> None:
        super().__init__(resource, dataset)
        names = {normalize_name(value) for value in dataset["name"]} if dataset else set()
        self.by_key = {
            (s.name, s.parent_phone): s for s in self.get_queryset().filter(name__in=names)
        }

    def get_instance(self, row: Any) -> Student | None:
        return self.by_key.get((row["name"], row["parent_phone"]))


class StudentResource(resources.ModelResource):
    """The ``shipped`` variant; pass the tenant: ``StudentResource(tenant_id=…)``."""

    # Blank phone stays NULL as in ours (CharWidget turns None into "" by default).
    phone = fields.Field(
        attribute="phone", column_name="phone", widget=widgets.CharWidget(allow_blank=False)
    )

    class Meta:
        model = Student
        # The natural key and every field our import writes on create and update.
        fields = ("name", "parent_phone", *UPDATABLE_FIELDS)
        import_id_fields = ("name", "parent_phone")
        use_bulk = True
        batch_size = 500
        use_transactions = True
        skip_unchanged = True
        skip_diff = True
        skip_html_diff = True
        report_skipped = False
        store_instance = False
        store_row_values = False
        clean_model_instances = False

    def __init__(self, *, tenant_id: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant_id = tenant_id
        self._ps_numbers = count(1)

    def get_queryset(self) -> Any:
        return Student.objects.filter(tenant_id=self.tenant_id, deleted_at__isnull=True)

    def init_instance(self, row: Any = None) -> Student:
        return Student(
            tenant_id=self.tenant_id,
            ps_number=f"{PS_NUMBER_PREFIX}{next(self._ps_numbers):07d}",
        )

    def before_import_row(self, row: Any, **kwargs: Any) -> None:
        """Validate and normalise as ours does; the row's columns become model fields."""
        parsed = normalize_row(RawRow(kwargs.get("row_number", 0), dict(row)))
        if isinstance(parsed, RowFailure):
            raise ValueError(", ".join(msg.en for msg in parsed.messages))
        row.clear()
        row.update(
            name=parsed.name,
            parent_phone=parsed.parent_phone,
            phone=parsed.phone,
            school_type=parsed.school_type or "",
            high_school=parsed.high_school or "",
            middle_school=parsed.middle_school or "",
            high_school_class=parsed.high_school_class or "",
            major=parsed.major or "",
            grade=parsed.grade,
            memo=parsed.memo or "",
            gender=parsed.gender or "",
        )


class CachedStudentResource(StudentResource):
    class Meta(StudentResource.Meta):
        instance_loader_class = KeyCachedInstanceLoader


class ForceInitStudentResource(StudentResource):
    class Meta(StudentResource.Meta):
        force_init_instance = True


VARIANTS: dict[str, type[StudentResource]] = {
    "shipped": StudentResource,
    "cached": CachedStudentResource,
    "force_init": ForceInitStudentResource,
}


def dataset_from(rows: list[RawRow]) -> Any:
    """The rows as the tablib Dataset the library imports (as read from the .xlsx)."""
    import tablib

    headers = ["name", "parent_phone", "phone", "school", "grade", "gender", "memo"]
    dataset = tablib.Dataset(headers=headers)
    for raw in rows:
        dataset.append([raw.values.get(h) for h in headers])
    return dataset


def import_students(tenant_id: int, dataset: Any, *, variant: str) -> dict[str, int]:
    """Import ``dataset`` into the tenant; returns the library's totals (new, update, …)."""
    resource = VARIANTS[variant](tenant_id=tenant_id)
    result = resource.import_data(dataset, dry_run=False, raise_errors=False)
    if result.has_errors() or result.has_validation_errors():
        errors = [e.error for e in result.base_errors] + [
            e.error for _, row_errors in result.row_errors() for e in row_errors
        ]
        raise RuntimeError(f"peer import failed: {errors[:3]!r} {result.invalid_rows[:3]!r}")
    return {k.lower(): v for k, v in result.totals.items()}
