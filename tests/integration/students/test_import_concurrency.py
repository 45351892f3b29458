"""One import per tenant at a time: concurrent imports run one after the other or are refused.

These tests use real transactions and one database connection per thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from domains.students import repository
from domains.students.errors import StudentsImportBusy
from domains.students.models import Student
from domains.students.plan import ImportResult
from domains.students.services import students_import_rows
from domains.tenants.models import Tenant
from tests.support.students import PASSWORD, many

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(function: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return function()
        finally:
            connection.close()

    return run


def test_two_imports_of_one_tenant_run_one_after_the_other(alpha: Tenant) -> None:
    # given two files that share 150 students, started at the same moment
    start = threading.Barrier(2)

    def import_file(first: int) -> ImportResult:
        start.wait()
        return students_import_rows(
            alpha.id,
            rows=many(300, start=first),
            initial_password=PASSWORD,
            chunk_size=50,
            lock_wait_seconds=60,
        )

    # when
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(in_thread(lambda f=first: import_file(f))) for first in (0, 150)]
        results = [future.result(timeout=120) for future in futures]

    # then the second saw the first's students: nothing failed, nothing was created twice
    counts = [r.counts() for r in results]
    assert [c["failed"] for c in counts] == [0, 0]
    assert sum(c["created"] for c in counts) == 450
    assert sum(c["unchanged"] for c in counts) == 150
    assert Student.objects.filter(tenant=alpha).count() == 450
    numbers = list(Student.objects.filter(tenant=alpha).values_list("ps_number", flat=True))
    assert sorted(numbers) == [f"{n:06d}" for n in range(1, 451)]


def test_an_import_is_refused_while_another_holds_the_tenant(alpha: Tenant, beta: Tenant) -> None:
    # given an import of alpha is running (its lock is held on another connection)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with repository.students_import_lock(alpha.id, wait_seconds=0):
            holding.set()
            release.wait(timeout=30)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(in_thread(hold))
        assert holding.wait(timeout=10)

        # when a second alpha import waits 0.3 s
        began = time.monotonic()
        with pytest.raises(StudentsImportBusy) as caught:
            students_import_rows(
                alpha.id, rows=many(5), initial_password=PASSWORD, lock_wait_seconds=0.3
            )
        waited = time.monotonic() - began

        # and beta imports meanwhile
        beta_result = students_import_rows(beta.id, rows=many(5), initial_password=PASSWORD)

        release.set()
        holder.result(timeout=10)

    # then alpha's second import was refused after its wait, with nothing written
    assert caught.value.code == "import_in_progress"
    assert caught.value.status_code == 409
    assert 0.3 <= waited < 5
    assert Student.objects.filter(tenant=alpha).count() == 0
    # other tenants are not blocked
    assert beta_result.counts()["created"] == 5

    # and once the first import has finished, alpha can import
    after = students_import_rows(alpha.id, rows=many(5), initial_password=PASSWORD)
    assert after.counts()["created"] == 5


def test_a_dry_run_does_not_wait_for_the_lock(alpha: Tenant) -> None:
    # given alpha's lock is held
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with repository.students_import_lock(alpha.id, wait_seconds=0):
            holding.set()
            release.wait(timeout=30)

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(in_thread(hold))
        assert holding.wait(timeout=10)

        # when
        preview = students_import_rows(
            alpha.id, rows=many(5), initial_password=PASSWORD, dry_run=True, lock_wait_seconds=0
        )
        release.set()
        holder.result(timeout=10)

    # then
    assert preview.counts()["created"] == 5
