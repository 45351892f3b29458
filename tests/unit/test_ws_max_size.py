"""Every shipped server command caps the WebSocket message size at the transport (audit F8)."""

from __future__ import annotations

import shlex
from pathlib import Path

from django.conf import settings

from project import devrun

UNIT = Path(__file__).resolve().parents[2] / "infra" / "asgi" / "academy-asgi@.service"


def _flag(argv: list[str], flag: str) -> int:
    return int(argv[argv.index(flag) + 1])


def test_F8_the_uvicorn_and_daphne_commands_cap_messages_a_little_above_the_frame_limit() -> None:
    # given
    limit = settings.REALTIME_MAX_FRAME_BYTES

    # when
    uvicorn = devrun.asgi_server_command("127.0.0.1", 8000, server="uvicorn")
    daphne = devrun.asgi_server_command("127.0.0.1", 8000, server="daphne")

    # then
    for size in (
        _flag(uvicorn, "--ws-max-size"),
        _flag(daphne, "--websocket-max-message-size"),
        _flag(daphne, "--websocket-max-frame-size"),
    ):
        assert limit < size <= 2 * limit


def test_F8_the_production_unit_caps_messages_as_the_dev_command_does() -> None:
    # given
    text = UNIT.read_text().replace("\\\n", " ")
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))

    # when
    argv = shlex.split(exec_start.removeprefix("ExecStart="))

    # then
    assert _flag(argv, "--ws-max-size") == devrun.WS_MAX_SIZE
