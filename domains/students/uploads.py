"""The ``excel_import`` job's upload: the form fields, the stored payload, the checks made in
the API request before anything is stored or queued (PROTOCOL.md §5, ADR 0102).

The file itself goes to S3 (``domains/jobs/uploads.py``); the job's payload holds its key, its
checksum and the initial password's hash, made once here: never the plain text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from rest_framework import serializers

from domains.common.errors import ValidationFailed
from domains.students import messages as m
from domains.students.errors import StudentsImportRejected, localized
from domains.students.services import check_initial_password, workbook_limits
from domains.students.xlsx import WorkbookRejected, read_students_xlsx

XLSX_EXTENSION = ".xlsx"
ZIP_MAGIC = b"PK\x03\x04"


class ExcelImportForm(serializers.Serializer):
    """The multipart fields next to ``file``."""

    initial_password = serializers.CharField(trim_whitespace=False, max_length=128)
    dry_run = serializers.BooleanField(default=False)

    def validate_initial_password(self, value: str) -> str:
        try:
            check_initial_password(value)
        except StudentsImportRejected as exc:
            raise serializers.ValidationError(str(exc.detail), code=exc.message.code) from exc
        return value


class ExcelImportPayload(serializers.Serializer):
    """The stored payload, validated again by the worker before it runs."""

    object_key = serializers.CharField(max_length=300)
    filename = serializers.CharField(max_length=255, allow_blank=True)
    size = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$")
    dry_run = serializers.BooleanField()
    initial_password_hash = serializers.CharField(max_length=256)


@dataclass(frozen=True, slots=True)
class PreparedUpload:
    data: bytes
    payload: dict[str, Any]  # everything but the object key


def excel_upload_prepare(upload: UploadedFile, fields: dict[str, Any]) -> PreparedUpload:
    """Check the form, then the file (size, .xlsx, rows); hash the initial password once.

    Raises ValidationFailed with field errors; nothing has been stored when it does.
    """
    form = _form_validated(fields)
    limit = settings.EXCEL_IMPORT_MAX_BYTES
    size = upload.size or 0
    if size > limit:
        raise _file_error(
            _("The file is %(size)d bytes; at most %(limit)d are accepted.")
            % {"size": size, "limit": limit}
        )
    if size == 0:
        raise _file_error(_("The file is empty."))
    name = (upload.name or "")[:255]
    if not name.lower().endswith(XLSX_EXTENSION):
        raise _file_error(str(localized(m.NOT_XLSX)))
    data = upload.read()
    if not data.startswith(ZIP_MAGIC):
        message = m.LEGACY_XLS if data.startswith(b"\xd0\xcf\x11\xe0") else m.NOT_XLSX
        raise _file_error(str(localized(message)))
    try:
        # The declared sizes and the shared-string count are checked first (a bomb is refused
        # before openpyxl parses it); then the sheet streams in read-only mode, refused past
        # EXCEL_IMPORT_MAX_ROWS data rows.
        read_students_xlsx(data, max_rows=settings.EXCEL_IMPORT_MAX_ROWS, limits=workbook_limits())
    except WorkbookRejected as exc:
        raise _file_error(str(localized(exc.message))) from exc
    password = form.validated_data["initial_password"]
    return PreparedUpload(
        data=data,
        payload={
            "filename": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "dry_run": form.validated_data["dry_run"],
            # ADR 0102: the one hash of this import, made here; the plain text goes no further.
            "initial_password_hash": make_password(password),
        },
    )


def excel_upload_matches(
    stored: Mapping[str, Any], upload: UploadedFile, fields: dict[str, Any]
) -> bool:
    """Whether a repeated request is the one ``stored`` (a job's payload) came from: the same
    file (size and SHA-256), name and ``dry_run``, and the same initial password.

    Answered without parsing the workbook. The password is checked against the stored hash
    (``check_password``): the plain text is compared, never kept. A form that is not valid
    raises ValidationFailed, as on a first request.
    """
    form = _form_validated(fields)
    digest = hashlib.sha256()
    size = 0
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return (
        size == stored.get("size")
        and digest.hexdigest() == stored.get("sha256")
        and (upload.name or "")[:255] == stored.get("filename")
        and form.validated_data["dry_run"] == stored.get("dry_run")
        and check_password(
            form.validated_data["initial_password"], stored.get("initial_password_hash", "")
        )
    )


def _form_validated(fields: dict[str, Any]) -> ExcelImportForm:
    form = ExcelImportForm(data=fields)
    if not form.is_valid():
        raise ValidationFailed(fields={k: [str(e) for e in v] for k, v in form.errors.items()})
    return form


def _file_error(text: str) -> ValidationFailed:
    return ValidationFailed(text, fields={"file": [text]})
