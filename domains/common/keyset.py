"""The keyset page both list repositories run (``GET /api/v1/jobs/``, ``GET /media/videos/``).

A list is newest first by ``(created_at, id)`` and a page starts strictly below the key of the
previous page's last row (``domains/common/cursors.py``). The cursor condition is written as
``created_at <= c AND (created_at < c OR id < i)``: the first half is an index condition on each
table's ``(tenant, created_at, id)`` index, the second drops the ties already shown. The EXPLAIN
tests of both lists (tests/integration/lists) check that the plans use those indexes.

No ``.objects`` here: each repository builds its tenant-scoped queryset and hands it in.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, Q, QuerySet

from domains.common.cursors import Cursor

M = TypeVar("M", bound=Model)


def with_statuses(rows: QuerySet[M], statuses: tuple[str, ...]) -> QuerySet[M]:
    """``rows`` in one of ``statuses`` (all of them when empty); one status is an equality, so
    the planner can use a ``(…, status)`` index as it would for a literal."""
    if len(statuses) == 1:
        return rows.filter(status=statuses[0])
    if statuses:
        return rows.filter(status__in=statuses)
    return rows


def newest_first(rows: QuerySet[M], after: Cursor | None) -> QuerySet[M]:
    """``rows`` newest first by ``(created_at, id)``, strictly below ``after`` if given."""
    if after is not None:
        rows = rows.filter(created_at__lte=after.created_at).filter(
            Q(created_at__lt=after.created_at) | Q(id__lt=after.id)
        )
    return rows.order_by("-created_at", "-id")
