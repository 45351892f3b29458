"""Django's classic middleware, declared sync-only so that under ASGI the chain runs in one
thread hop.

Django's ``MiddlewareMixin`` classes are sync *and* async capable. Under ASGI, each such class
runs its ``process_request`` and its ``process_response`` through their own ``sync_to_async``:
14 hops to the request's thread and back for the eight below. A class that is only sync
capable is adapted once at the boundary instead: Django wraps the chain in a single
``sync_to_async``, and the eight run one after the other on that thread, as under WSGI
(docs/adr/0007-progress-fast-path.md, addendum). Django's async core still calls the view hook
(CSRF's ``process_view``) through one hop of its own. These subclasses change nothing but the
two flags, so they behave as the originals.
"""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Session
from django.middleware.clickjacking import XFrameOptionsMiddleware as _XFrameOptions
from django.middleware.common import CommonMiddleware as _Common
from django.middleware.csrf import CsrfViewMiddleware as _Csrf
from django.middleware.locale import LocaleMiddleware as _Locale
from django.middleware.security import SecurityMiddleware as _Security


class _SyncOnly:
    """First in the bases: the flags Django reads on the class win over the original's."""

    sync_capable = True
    async_capable = False


class SecurityMiddleware(_SyncOnly, _Security):
    pass


class SessionMiddleware(_SyncOnly, _Session):
    pass


class LocaleMiddleware(_SyncOnly, _Locale):
    pass


class CommonMiddleware(_SyncOnly, _Common):
    pass


class CsrfViewMiddleware(_SyncOnly, _Csrf):
    pass


class AuthenticationMiddleware(_SyncOnly, _Authentication):
    pass


class MessageMiddleware(_SyncOnly, _Messages):
    pass


class XFrameOptionsMiddleware(_SyncOnly, _XFrameOptions):
    pass
