"""A tiny WebSocket client: subscribe to one topic on /ws/v1/ and print its states live.

Used by ``manage.py watch_job`` and ``manage.py demo_job --watch``; also handy against a
deployed server. Speaks PROTOCOL.md §4 (token as the ``bearer.<token>`` subprotocol).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.sync.client import connect
from websockets.typing import Subprotocol

TERMINAL = {"DONE", "FAILED", "READY", "CANCELLED"}


def describe(frame: dict[str, Any]) -> str:
    """One line per frame: seq, status, progress, and the outcome when terminal."""
    if frame.get("type") != "state":
        return json.dumps(frame, ensure_ascii=False)
    parts = [f"seq={frame['seq']:<3}", f"{frame['status']:<10}"]
    progress = frame.get("progress") or {}
    if progress.get("percent") is not None:
        parts.append(f"{progress['percent']:>5.1f}%")
    if progress.get("step_index") is not None:
        parts.append(f"step {progress['step_index']}/{progress.get('step_total')}")
    if progress.get("step_name_display"):
        parts.append(str(progress["step_name_display"]))
    if progress.get("remaining_seconds") is not None:
        parts.append(f"~{progress['remaining_seconds']} s left")
    if frame.get("error"):
        parts.append(f"error: {frame['error']}")
    if frame.get("result") is not None:
        parts.append(f"result: {json.dumps(frame['result'], ensure_ascii=False)[:300]}")
    elif frame.get("result_in_db"):
        parts.append("result: in the job record")
    return "  ".join(parts)


def watch_topic(
    *,
    url: str,
    token: str,
    topic: str,
    origin: str | None,
    out: Callable[[str], None],
    timeout: float = 300.0,
) -> dict[str, Any] | None:
    """Print every frame of ``topic`` until it is terminal; returns the last state frame."""
    last: dict[str, Any] | None = None
    deadline = time.monotonic() + timeout
    subprotocols = [Subprotocol("realtime.v1"), Subprotocol(f"bearer.{token}")]
    with connect(url, subprotocols=subprotocols, origin=origin, open_timeout=10) as socket:  # type: ignore[arg-type]
        socket.send(json.dumps({"type": "subscribe", "topic": topic}))
        while time.monotonic() < deadline:
            try:
                raw = socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            frame = json.loads(raw)
            out(describe(frame))
            if frame.get("type") == "state":
                last = frame
                if frame.get("status") in TERMINAL:
                    break
            elif frame.get("type") == "error":
                break
    return last
