"""What the project's two raw Redis connections share: where to connect, and RESP.

``realtime.multiplex`` (the progress reads' pipelined connection) and ``realtime.subscriber``
(the channel layer's pub/sub reader) speak to Redis over an asyncio Protocol of their own
rather than through redis-py's connection classes (ADR 0018, ADR 0019). They still read the
URL with redis-py's own ``parse_url``, so ``redis://``, ``rediss://`` and ``unix://`` mean what
they mean to every other client of the project: for ``rediss://`` (ElastiCache with transit
encryption, infra/aws/cache.yaml) the TLS context is redis-py's, from the URL's ``ssl_*`` query
parameters and with its defaults (certificate required, host name checked).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import RedisSSLContext, SSLConnection, parse_url


def pack(*args: str | bytes | int) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        value = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to connect, as a redis-py URL says."""

    host: str | None = None
    port: int = 6379
    path: str | None = None  # unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0
    ssl: ssl.SSLContext | None = None  # rediss://
    connect_timeout: float | None = 5.0
    health_check_interval: float = 0.0
    client_name: str | None = None  # CLIENT SETNAME, to find the connection in CLIENT LIST

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float | None = 5.0,
        health_check_interval: float = 0.0,
        client_name: str | None = None,
    ) -> Endpoint:
        """Raises ``ValueError`` for a scheme redis-py does not know (as redis-py does)."""
        kwargs: dict[str, Any] = dict(parse_url(url))
        return cls(
            host=kwargs.get("host") or ("localhost" if "path" not in kwargs else None),
            port=int(kwargs.get("port") or 6379),
            path=kwargs.get("path"),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            db=int(kwargs.get("db") or 0),
            ssl=_ssl_context(kwargs),
            connect_timeout=kwargs.get("socket_connect_timeout", connect_timeout),
            health_check_interval=float(
                kwargs.get("health_check_interval", health_check_interval) or 0
            ),
            client_name=kwargs.get("client_name", client_name),
        )

    @property
    def server_hostname(self) -> str | None:
        """The name the server's certificate is checked against (TLS only)."""
        return self.host if self.ssl is not None else None

    def setup_commands(self) -> list[bytes]:
        """What a new connection sends before anything else: AUTH, CLIENT SETNAME, SELECT."""
        commands = []
        if self.password is not None:
            user = (self.username,) if self.username else ()
            commands.append(pack("AUTH", *user, self.password))
        if self.client_name:
            commands.append(pack("CLIENT", "SETNAME", self.client_name))
        if self.db:
            commands.append(pack("SELECT", self.db))
        return commands

    def where(self) -> str:
        """The address for logs and errors, without credentials."""
        if self.path is not None:
            return f"unix://{self.path}"
        return f"{'rediss' if self.ssl is not None else 'redis'}://{self.host}:{self.port}"


def _ssl_context(kwargs: dict[str, Any]) -> ssl.SSLContext | None:
    if kwargs.get("connection_class") is not SSLConnection:
        return None
    # redis-py's SSLConnection defaults: certificate required, host name checked.
    return RedisSSLContext(
        keyfile=kwargs.get("ssl_keyfile"),
        certfile=kwargs.get("ssl_certfile"),
        cert_reqs=kwargs.get("ssl_cert_reqs", "required"),
        include_verify_flags=kwargs.get("ssl_include_verify_flags"),
        exclude_verify_flags=kwargs.get("ssl_exclude_verify_flags"),
        ca_certs=kwargs.get("ssl_ca_certs"),
        ca_data=kwargs.get("ssl_ca_data"),
        ca_path=kwargs.get("ssl_ca_path"),
        check_hostname=kwargs.get("ssl_check_hostname", True),
        min_version=kwargs.get("ssl_min_version"),
        ciphers=kwargs.get("ssl_ciphers"),
        password=kwargs.get("ssl_password"),
    ).get()
