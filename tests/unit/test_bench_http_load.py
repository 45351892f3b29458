"""The HTTP benchmark's load client reads responses correctly (no timings asserted)."""

from __future__ import annotations

import asyncio

import pytest

from bench.http.load import ProtocolError, build_request, read_response


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_content_length_response() -> None:
    # given a response with a Content-Length
    raw = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}'

    # when/then it is read whole and the connection stays open
    assert await read_response(_reader(raw)) == (200, b'{"a": 1}', True)


async def test_chunked_response_and_connection_close() -> None:
    # given a chunked response that closes the connection
    raw = (
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b'4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'
    )

    # when/then the chunks are joined and the connection is not kept
    assert await read_response(_reader(raw)) == (404, b'{"a": 1}', False)


async def test_two_responses_on_one_connection() -> None:
    # given two responses back to back on one stream
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    reader = _reader(one + one)

    # when/then each read takes exactly one of them
    assert (await read_response(reader))[1] == b"ok"
    assert (await read_response(reader))[1] == b"ok"


async def test_not_http_is_a_protocol_error() -> None:
    # given a server that does not speak HTTP
    # when/then reading its answer is a protocol error
    with pytest.raises(ProtocolError):
        await read_response(_reader(b"SSH-2.0-OpenSSH\r\n\r\n"))


def test_build_request_carries_the_bearer_token() -> None:
    # given a path and a bearer token
    # when the request is built
    raw = build_request("127.0.0.1:8000", "/api/v1/jobs/x/progress/", "tok")

    # then it is a GET with the token, and without a token there is no header
    assert raw.startswith(b"GET /api/v1/jobs/x/progress/ HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer tok\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")
    assert b"Authorization" not in build_request("h", "/", None)
