"""What the two list endpoints share: their query parameters and the page around the rows.

``GET /api/v1/jobs/`` and ``GET /media/videos/`` (PROTOCOL.md §5) answer
``{"results": [...], "next_cursor": "..." | null, "next": "<path>?…" | null}``. The query takes
``cursor`` (from ``next_cursor``) and ``page_size`` (1 to ``LIST_PAGE_SIZE_MAX``, default
``LIST_PAGE_SIZE``) besides each list's filters. A value that is not valid, an empty one
(``?status=``) included, is ``400 invalid`` with the parameter in ``fields``: an absent filter
is left out of the URL, never sent empty, so the document's types are exactly what is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar, Protocol
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request

from domains.common.cursors import CURSOR_MAX_LENGTH, Cursor, InvalidCursor


class ListQuerySerializer(serializers.Serializer):
    """``cursor`` and ``page_size``; a list's own filters are declared by its subclass."""

    cursor = serializers.CharField(required=False, max_length=CURSOR_MAX_LENGTH)
    page_size = serializers.IntegerField(required=False, min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A setting, read per request rather than at import (tests override it).
        self.fields["page_size"] = serializers.IntegerField(
            required=False, min_value=1, max_value=settings.LIST_PAGE_SIZE_MAX
        )

    def validate_cursor(self, value: str) -> Cursor:
        try:
            return Cursor.decode(value)
        except InvalidCursor as exc:
            raise serializers.ValidationError(
                _("Not a cursor of this list: use next_cursor from a page.")
            ) from exc


def query_data(request: Request, *, repeated: Iterable[str] = ()) -> dict[str, Any]:
    """The query string as serializer input; ``repeated`` names parameters that may be given
    several times (a list of values). Empty values are kept, for the serializer to refuse."""
    many = frozenset(repeated)
    data: dict[str, Any] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        data[name] = values if name in many else values[-1]
    return data


def page_size_of(validated: Mapping[str, Any]) -> int:
    size: int = validated.get("page_size") or settings.LIST_PAGE_SIZE
    return size


def next_link(request: Request, cursor: Cursor | None) -> str | None:
    """The path of the next page: the same filters and page size, the new cursor."""
    if cursor is None:
        return None
    kept = [
        (name, value)
        for name in request.query_params
        if name != "cursor"
        for value in request.query_params.getlist(name)
    ]
    return f"{request.path}?{urlencode([*kept, ('cursor', cursor.encode())])}"


_MARKER = uuid.UUID(int=0)


def path_of(name: str, kwarg: str) -> Callable[[uuid.UUID], str]:
    """The path of URL ``name`` for any id, from one ``reverse``: a page of 20 rows would
    otherwise pay 40 of them (a fifth of the view's time under cProfile)."""
    template = reverse(name, kwargs={kwarg: _MARKER})
    marker = str(_MARKER)
    return lambda value: template.replace(marker, str(value))


class RowLinks:
    """``get_progress_url`` and ``get_detail_url`` of a list row's serializer, whose row has the
    attribute ``id_attr``, also the URL kwarg of routes ``progress_route`` and ``detail_route``.

    One ``reverse()`` a page, not two a row: ``many=True`` shares the instance over the rows.
    The ``SerializerMethodField``s stay declared on the serializer, in the order they answer.
    """

    id_attr: ClassVar[str]
    progress_route: ClassVar[str]
    detail_route: ClassVar[str]

    @cached_property
    def _progress_path(self) -> Callable[[uuid.UUID], str]:
        return path_of(self.progress_route, self.id_attr)

    @cached_property
    def _detail_path(self) -> Callable[[uuid.UUID], str]:
        return path_of(self.detail_route, self.id_attr)

    def get_progress_url(self, row: Any) -> str:
        return self._progress_path(getattr(row, self.id_attr))

    def get_detail_url(self, row: Any) -> str:
        return self._detail_path(getattr(row, self.id_attr))


class PageOf(Protocol):
    """What a list service returns: the rows and the key to continue below, if any."""

    @property
    def rows(self) -> Sequence[Any]: ...

    @property
    def next_cursor(self) -> Cursor | None: ...


def page_serializer(component_name: str, item: type[serializers.Serializer]) -> type[Any]:
    """The page around ``item`` rows, documented as ``component_name``."""

    @extend_schema_serializer(component_name=component_name)
    class PageSerializer(serializers.Serializer):
        results = item(many=True)
        next_cursor = serializers.CharField(
            allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page."
        )
        next = serializers.CharField(
            allow_null=True,
            help_text="The next page's path with the same filters; null on the last.",
        )

    PageSerializer.__name__ = PageSerializer.__qualname__ = f"{component_name}Serializer"
    return PageSerializer


def page_body(request: Request, page: PageOf, item: type[serializers.Serializer]) -> dict[str, Any]:
    """The answer of a list: the page's rows through ``item``, and how to ask for the next."""
    return {
        "results": item(page.rows, many=True).data,
        "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
        "next": next_link(request, page.next_cursor),
    }


# --- OpenAPI --------------------------------------------------------------------------------
CURSOR_PARAMETER = OpenApiParameter(
    "cursor",
    # Opaque: the alphabet and length are all a schema can say; any other text is 400.
    {"type": "string", "pattern": rf"^[A-Za-z0-9_-]{{1,{CURSOR_MAX_LENGTH}}}$"},
    OpenApiParameter.QUERY,
    description="`next_cursor` of the previous page; absent for the first (newest) page. "
    "Only a cursor this server wrote is accepted.",
)


PAGE_SIZE_PARAMETER = OpenApiParameter(
    "page_size",
    # LIST_PAGE_SIZE_MAX's default; a deployment that raises it documents the default range.
    {"type": "integer", "minimum": 1, "maximum": 100},
    OpenApiParameter.QUERY,
    description="Rows per page: 1 to `LIST_PAGE_SIZE_MAX` (100 by default); "
    "`LIST_PAGE_SIZE` (20 by default) when absent.",
)
