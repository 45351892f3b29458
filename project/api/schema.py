"""The OpenAPI document: the shared error component, the status codes every operation can
answer, and the operations Django serves outside DRF (progress, health).

drf-spectacular describes the DRF views from their serializers and ``extend_schema``. What it
cannot see is added here, derived from the same configuration the views run with, so the
document cannot drift from behaviour:

- :class:`AutoSchema` adds the answers of the authentication and permission classes (401, and
  403 ``password_change_required`` on every view that refuses an initial password) and of the
  parsers (400 ``parse_error``, 415); it names components after their views; and it states in
  each string field's ``pattern`` what DRF's ``CharField`` refuses beyond length (NUL, and blank
  after trimming), so a request that is valid by the schema is not refused.
- :func:`add_plain_django_operations` (a postprocessing hook) adds the progress endpoints,
  answered by the ASGI fast path (``realtime/fastpath.py``) or their Django views, and the
  health probes.

Every error answers one component, ``Error``: ``{code, detail, fields}``
(``project/api/exception_handlers.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers

from domains.common.openapi import (
    BEARER_SCHEME,
    DESCRIPTION,
    ERROR_COMPONENT,
    NOT_AUTHENTICATED,
    NOT_FOUND,
    PARSE_ERROR,
    PASSWORD_CHANGE_REQUIRED,
    PROTOCOL_DOC,
    STATE_COMPONENTS,
    TOKEN_NOT_VALID,
    UNAVAILABLE,
    UNSUPPORTED_MEDIA_TYPE,
    ErrorCase,
    ErrorSerializer,
    trimmed_text_pattern,
)
from domains.tenants.auth import IsTenantMember
from realtime.state import JOB_STATUSES, VIDEO_STATUSES


class StatelessTenantJWTScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer <access token>`` (domains/tenants/auth.py)."""

    target_class = "domains.tenants.auth.StatelessTenantJWTAuthentication"
    name = BEARER_SCHEME

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Bearer",  # noqa: S106 - the scheme name, not a secret
            bearer_format="JWT",
        )
        scheme["description"] = (
            "An access token from POST /api/v1/auth/token/: it carries the user, the tenant "
            "and the role, and is verified without a database query."
        )
        return scheme


# --- the AutoSchema -------------------------------------------------------------------------
# Nested serializer names of the styleguide's views, and what their component is called.
_NESTED_SUFFIXES = {
    "InputSerializer": "",  # COMPONENT_SPLIT_REQUEST appends "Request"
    "FileInputSerializer": "Upload",
    "OutputSerializer": "Response",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: serializers.Serializer, direction: Any) -> str:
        cls = type(serializer)
        outer, _dot, inner = cls.__qualname__.rpartition(".")
        if outer.endswith("Api") and inner in _NESTED_SUFFIXES:
            return outer.removesuffix("Api") + _NESTED_SUFFIXES[inner]
        return cls.__name__

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            isinstance(field, serializers.ListField)
            and not field.allow_empty
            and isinstance(schema, dict)
        ):
            schema.setdefault("minItems", 1)
        if (
            direction == "request"
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "format" not in schema
            and "enum" not in schema
            and isinstance(field, serializers.CharField)
            and not any(isinstance(v, RegexValidator) for v in field.validators)
        ):
            # DRF refuses NUL in every CharField, and blank (after trimming) unless allowed. A
            # field's `forbidden_characters` (regex class text) are refused inside the text.
            forbidden = getattr(field, "forbidden_characters", "")
            if field.allow_blank:
                schema["pattern"] = r"^[^\u0000]*$"
            elif field.trim_whitespace:
                schema["pattern"] = trimmed_text_pattern(forbidden=forbidden)
            else:
                schema["pattern"] = r"^[^\u0000]+$"
                schema.setdefault("minLength", 1)
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        if "requestBody" in operation:
            # Every body this API reads has required fields: no body is a 400, never optional
            # (drf-spectacular cannot tell for a union of serializers).
            operation["requestBody"]["required"] = True
        responses = operation.setdefault("responses", {})
        for case in self._derived_errors(bool(operation.get("requestBody"))):
            self._merge_error(responses, case)
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def get_tags(self) -> list[str]:
        """The resource: ``/api/v1/<tag>/...`` or ``/media/<tag>/...``."""
        parts = [part for part in self.path.split("/") if part]
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            return [parts[2]]
        if parts[:1] == ["media"] and len(parts) > 1:
            return [parts[1]]
        return super().get_tags()

    def _derived_errors(self, has_body: bool) -> Iterable[ErrorCase]:
        """What the view's authentication, permission and parser classes can answer."""
        if self.view.get_authenticators():
            yield NOT_AUTHENTICATED
            yield TOKEN_NOT_VALID
        if any(isinstance(p, IsTenantMember) for p in self.view.get_permissions()) and not (
            getattr(self.view, "allowed_before_password_change", False)
        ):
            yield PASSWORD_CHANGE_REQUIRED
        if has_body and self.method in _BODY_METHODS:
            yield PARSE_ERROR
            yield UNSUPPORTED_MEDIA_TYPE

    def _merge_error(self, responses: dict[str, Any], case: ErrorCase) -> None:
        ref = self.resolve_serializer(ErrorSerializer, "response").ref
        response = responses.setdefault(
            str(case.status),
            {"description": "", "content": {"application/json": {"schema": ref}}},
        )
        content = response.setdefault("content", {}).setdefault("application/json", {"schema": ref})
        examples = content.setdefault("examples", {})
        if _example_name(case) not in examples:
            examples[_example_name(case)] = {"value": case.example(), "summary": case.summary}
            description = response.get("description") or ""
            response["description"] = (
                f"{description}; {case.summary}" if description else (case.summary)
            )


def _example_name(case: ErrorCase) -> str:
    """drf-spectacular's name for the example of ``case`` (inflection.camelize)."""
    name = case.name or case.code
    return "".join(part[:1].upper() + part[1:] for part in name.replace(" ", "_").split("_"))


# --- operations outside DRF -------------------------------------------------------------------
_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_NULLABLE_INTEGER = {"type": "integer", "nullable": True}
_NULLABLE_NUMBER = {"type": "number", "nullable": True}

PROGRESS_SCHEMA = {
    "type": "object",
    "description": "The running step; null once terminal.",
    "nullable": True,
    "properties": {
        "percent": {**_NULLABLE_NUMBER, "minimum": 0, "maximum": 100},
        "step": _NULLABLE_STRING,
        "step_index": _NULLABLE_INTEGER,
        "step_total": _NULLABLE_INTEGER,
        "step_name_display": _NULLABLE_STRING,
        "step_percent": _NULLABLE_NUMBER,
        "remaining_seconds": _NULLABLE_INTEGER,
    },
    "required": [
        "percent",
        "step",
        "step_index",
        "step_total",
        "step_name_display",
        "step_percent",
        "remaining_seconds",
    ],
}


def _state_schema(kind: str, statuses: Sequence[str], extra: dict[str, Any]) -> dict[str, Any]:
    common = {
        "topic": {"type": "string", "pattern": f"^{kind}:[0-9a-f-]{{36}}$"},
        "seq": {"type": "integer", "minimum": 1, "description": "Grows by 1 per change."},
        "epoch": {
            "type": "integer",
            "minimum": 0,
            "description": "Set when the state was created (Redis TIME, ms); a state rebuilt "
            "after Redis lost it has a larger one. `(epoch, seq)` orders states.",
        },
        "status": {"type": "string", "enum": list(statuses)},
        "progress": {"$ref": "#/components/schemas/Progress"},
        "error": _NULLABLE_STRING,
        "cancel_requested": {
            "type": "boolean",
            "description": "A cancel was asked for (POST …/cancel/); the worker ends it CANCELLED.",
        },
        "updated_at": {"type": "integer", "description": "Epoch milliseconds."},
    }
    properties = {**common, **extra}
    return {
        "type": "object",
        "description": f"The live state of a {kind} (PROTOCOL.md §3); the same document as the "
        "WebSocket's `state` frames. Clients ignore fields they do not know.",
        "properties": properties,
        "required": list(properties),
    }


JOB_STATE_SCHEMA = _state_schema(
    "job",
    JOB_STATUSES,
    {
        "job_type": _NULLABLE_STRING,
        "result_in_db": {
            "type": "boolean",
            "description": "The result is too large for Redis: read the detail endpoint.",
        },
        "result": {"nullable": True, "description": "The job's result once DONE, else null."},
    },
)
VIDEO_STATE_SCHEMA = _state_schema(
    "video",
    VIDEO_STATUSES,
    {
        "hls_path": _NULLABLE_STRING,
        "duration": _NULLABLE_NUMBER,
        "session_id": {
            "type": "integer",
            "minimum": 1,
            "maximum": 2**63 - 1,
            "nullable": True,
            "description": "The video's lecture session; null only for a state written before "
            "the server sent it.",
        },
    },
)
JOB_STATE_EXAMPLE = {
    "topic": "job:7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "seq": 17,
    "epoch": 1764554400123,
    "status": "PROCESSING",
    "progress": {
        "percent": 42,
        "step": "importing",
        "step_index": 3,
        "step_total": 5,
        "step_name_display": "학생 등록",
        "step_percent": 40,
        "remaining_seconds": 12,
    },
    "error": None,
    "cancel_requested": False,
    "updated_at": 1763780000123,
    "job_type": "excel_import",
    "result_in_db": False,
    "result": None,
}
VIDEO_STATE_EXAMPLE = {
    "topic": "video:3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9",
    "seq": 9,
    "epoch": 1764554400123,
    "status": "READY",
    "progress": None,
    "error": None,
    "cancel_requested": False,
    "updated_at": 1763780000123,
    "hls_path": "videos/1/3f2b8a1c-0d4e-4c6b-9a51-2e7f10b4c8d9/1/master.m3u8",
    "duration": 312.4,
    "session_id": 4021,
}


def _error_content(*cases: ErrorCase) -> dict[str, Any]:
    return {
        "description": "; ".join(case.summary for case in cases),
        "content": {
            "application/json": {
                "schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"},
                "examples": {
                    _example_name(case): {"value": case.example(), "summary": case.summary}
                    for case in cases
                },
            }
        },
    }


_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before retrying.",
        "required": True,
    }
}


def _progress_operation(kind: str, tag: str, state: str, example: dict[str, Any]) -> dict:
    unavailable = _error_content(UNAVAILABLE)
    unavailable["headers"] = _RETRY_AFTER_HEADER
    return {
        "operationId": f"{kind}s_progress_retrieve",
        "summary": f"The live state of a {kind}, from Redis only",
        "description": (
            "Zero SQL: answered from Redis, by the ASGI fast path in front of Django. Poll it "
            "only while the WebSocket is down (1 s for 10 s, then 2 s until 60 s, then 3 s; "
            f"{PROTOCOL_DOC} §6). 404 means Redis holds nothing for this {kind} in your "
            "tenant: read the detail endpoint once."
        ),
        "tags": [tag],
        "parameters": [
            {"name": f"{kind}_id", "in": "path", "required": True, "schema": _UUID},
        ],
        "security": [{BEARER_SCHEME: []}],
        "responses": {
            "200": {
                "description": "The state document.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{state}"},
                        "examples": {"State": {"value": example}},
                    }
                },
            },
            "401": _error_content(NOT_AUTHENTICATED),
            "404": _error_content(NOT_FOUND),
            "503": unavailable,
        },
    }


def _health_operations() -> dict[str, Any]:
    not_ready = ErrorCase(
        503,
        "unavailable",
        "Not ready: redis",
        {"redis": "ConnectionError: Error 111 connecting to 127.0.0.1:6379."},
        "A dependency does not answer; `fields` names each one and its error",
    )
    ready_failed = _error_content(not_ready)
    ready_failed["headers"] = _RETRY_AFTER_HEADER
    ok: dict[str, Any] = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    }
    return {
        "/health/": {
            "get": {
                "operationId": "health_retrieve",
                "summary": "Liveness: the process answers (no database or Redis call)",
                "tags": ["health"],
                "security": [{}],
                "responses": {
                    "200": {
                        "description": "Alive.",
                        "content": {
                            "application/json": {
                                "schema": {**ok, "required": ["status"]},
                                "examples": {"Ok": {"value": {"status": "ok"}}},
                            }
                        },
                    }
                },
            }
        },
        "/health/ready/": {
            "get": {
                "operationId": "health_ready_retrieve",
                "summary": "Readiness: the database, Redis and the queue endpoint answer",
                "tags": ["health"],
                "security": [{}],
                "responses": {
                    "200": {
                        "description": "Ready.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        **ok["properties"],
                                        "checks": {
                                            "type": "object",
                                            "additionalProperties": {
                                                "type": "string",
                                                "enum": ["ok"],
                                            },
                                        },
                                    },
                                    "required": ["status", "checks"],
                                },
                                "examples": {
                                    "Ready": {
                                        "value": {
                                            "status": "ok",
                                            "checks": {
                                                "database": "ok",
                                                "redis": "ok",
                                                "queue": "ok",
                                            },
                                        }
                                    }
                                },
                            }
                        },
                    },
                    "503": ready_failed,
                },
            }
        },
    }


def add_plain_django_operations(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Postprocessing hook: the operations Django serves without DRF, and the description."""
    result.setdefault("info", {})["description"] = DESCRIPTION
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Progress"] = PROGRESS_SCHEMA
    schemas[STATE_COMPONENTS["job"]] = JOB_STATE_SCHEMA
    schemas[STATE_COMPONENTS["video"]] = VIDEO_STATE_SCHEMA
    paths = result.setdefault("paths", {})
    paths["/api/v1/jobs/{job_id}/progress/"] = {
        "get": _progress_operation("job", "jobs", STATE_COMPONENTS["job"], JOB_STATE_EXAMPLE)
    }
    paths["/media/videos/{video_id}/progress/"] = {
        "get": _progress_operation(
            "video", "videos", STATE_COMPONENTS["video"], VIDEO_STATE_EXAMPLE
        )
    }
    paths.update(_health_operations())
    accepted = paths.get("/api/v1/jobs/", {}).get("post", {}).get("responses", {}).get("202")
    if accepted is not None:
        accepted["links"] = _JOB_LINKS
    result["paths"] = dict(sorted(paths.items()))
    return result


_JOB_LINKS = {
    name: {
        "operationId": operation_id,
        "parameters": {"job_id": "$response.body#/job_id"},
        "description": description,
    }
    for name, operation_id, description in (
        ("JobDetail", "api_v1_jobs_retrieve", "The job's record (`detail_url`)."),
        ("JobProgress", "jobs_progress_retrieve", "The job's live state (`progress_url`)."),
        ("JobCancel", "jobs_cancel", "Ask the job to stop (`POST …/cancel/`)."),
    )
}
