"""The dev runner's ASGI server command: the production unit's server, with its flags."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from project import devrun

UNIT = Path(__file__).resolve().parents[2] / "infra" / "asgi" / "academy-asgi@.service"
# Production flags that development leaves out or sets differently on purpose.
NOT_IN_DEV = {"--proxy-headers", "--forwarded-allow-ips"}
DEV_VALUES = {"--host": "127.0.0.1", "--port": "8000", "--timeout-graceful-shutdown": "5"}


def _options(argv: list[str]) -> dict[str, str | None]:
    """``--flag value`` and bare ``--flag`` pairs of an argv, after the application argument."""
    start = argv.index(devrun.ASGI_APP) + 1
    options: dict[str, str | None] = {}
    rest = argv[start:]
    for index, word in enumerate(rest):
        if word.startswith("--"):
            following = rest[index + 1] if index + 1 < len(rest) else None
            is_value = following is not None and not following.startswith("--")
            options[word] = following if is_value else None
    return options


def _unit_exec_start() -> list[str]:
    text = UNIT.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_the_uvicorn_command_carries_the_production_units_flags() -> None:
    # given
    production = _options(_unit_exec_start())

    # when
    argv = devrun.asgi_server_command("127.0.0.1", 8000, server="uvicorn")

    # then
    dev = _options(argv)
    assert argv[1:3] == ["-m", "uvicorn"]
    expected = {
        flag: DEV_VALUES.get(flag, value)
        for flag, value in production.items()
        if flag not in NOT_IN_DEV
    }
    assert dev == expected
    assert dev["--ws"] == "websockets-sansio"
    assert dev["--ws-per-message-deflate"] == "false"


def test_uvicorn_is_the_default_and_daphne_is_chosen_by_the_environment() -> None:
    # given
    unset: dict[str, str] = {}
    daphne = {devrun.ASGI_SERVER_ENV: " Daphne "}

    # when
    default_name = devrun.asgi_server_name(unset)
    daphne_name = devrun.asgi_server_name(daphne)

    # then
    assert default_name == "uvicorn"
    assert daphne_name == "daphne"
    assert devrun.asgi_server_command("127.0.0.1", 8123, server=daphne_name)[1:] == [
        "-m",
        "project.daphne_server",  # daphne with its access log through the redacting filters
        "-b",
        "127.0.0.1",
        "-p",
        "8123",
        "--websocket-max-message-size",
        str(devrun.WS_MAX_SIZE),
        "--websocket-max-frame-size",
        str(devrun.WS_MAX_SIZE),
        devrun.ASGI_APP,
    ]


def test_an_unknown_server_name_is_refused_with_the_choices() -> None:
    # given
    environ = {devrun.ASGI_SERVER_ENV: "gunicorn"}

    # when / then
    with pytest.raises(devrun.UnknownServer, match="uvicorn, daphne"):
        devrun.asgi_server_name(environ)


def test_the_demo_runs_a_worker_per_kind_and_the_outbox_relay() -> None:
    # given / when the commands the dev runner starts beside the ASGI server
    commands = devrun.background_commands()

    # then there is one worker per queue kind and one relay, all through manage.py
    assert [argv[1:] for argv in commands] == [
        ["manage.py", "run_worker", "--queue", "ai"],
        ["manage.py", "run_worker", "--queue", "video"],
        ["manage.py", "run_worker", "--queue", "messaging"],
        ["manage.py", "relay_outbox"],
    ]


def test_demo_scale_refuses_fewer_than_one_process_and_another_server(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given daphne chosen as the server
    monkeypatch.setenv(devrun.ASGI_SERVER_ENV, "daphne")

    # when the runner is asked for no process, and for two daphne processes
    none = devrun.main(["--processes", "0"])
    daphne = devrun.main(["--processes", "2"])

    # then both stop before starting anything, saying why
    assert (none, daphne) == (1, 1)
    said = capsys.readouterr().out
    assert "at least 1" in said
    assert "uvicorn" in said


def test_the_scale_launcher_runs_each_server_with_the_production_command() -> None:
    # given three local servers of the launcher, one of them in a namespace
    from project import scale

    upstreams = [
        *scale.local_upstreams(2),
        scale.Upstream("10.77.0.11", 8001, ("ip", "netns", "exec", "h1")),
    ]

    # when their commands are built as WebTier builds them
    commands = [[*u.launcher, *devrun.asgi_server_command(u.host, u.port)] for u in upstreams]

    # then each is the production command on its own address, behind its launcher
    assert len({(u.host, u.port) for u in upstreams}) == 3
    for upstream, argv in zip(upstreams, commands, strict=True):
        options = _options(argv)
        assert (options["--host"], options["--port"]) == (upstream.host, str(upstream.port))
        assert options["--ws"] == "websockets-sansio"
    assert commands[2][:4] == ["ip", "netns", "exec", "h1"]
