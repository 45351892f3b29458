"""The video demo page's own routes: the page, hls.js (a demo-only npm package) and the sample
lecture, made once by Debian's ffmpeg from its lavfi sources."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from domains.videos.ffmpeg import ffprobe_command
from domains.videos.probe import parse_probe
from project import demo_video


def test_the_page_its_script_and_hls_js_are_served(client: Client) -> None:
    # given the demo's routes (DEMO_ENABLED in tests)
    # when the page, its module and the player library are fetched
    page = client.get("/demo/video/")
    script = client.get("/demo/video.js")
    player = client.get("/demo/vendor/hls.min.js")

    # then the page loads both, and hls.js comes from the demo's own node_modules
    assert page.status_code == 200
    html = b"".join(page.streaming_content).decode()  # type: ignore[attr-defined]
    assert '<script src="/demo/vendor/hls.min.js">' in html
    assert '<script type="module" src="/demo/video.js">' in html
    assert script.status_code == 200
    assert "/cancel/" in b"".join(script.streaming_content).decode()  # type: ignore[attr-defined]
    assert player.status_code == 200
    demo_package = json.loads((demo_video.DEMO_DIR / "package.json").read_text())
    client_package = json.loads((demo_video.CLIENT_DIR / "package.json").read_text())
    assert "hls.js" in demo_package["dependencies"]
    assert "hls.js" not in {
        **client_package.get("dependencies", {}),
        **client_package.get("devDependencies", {}),
    }


def test_the_sample_lecture_is_made_once_from_lavfi_and_served(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an empty cache directory
    monkeypatch.setenv("DEMO_CACHE_DIR", str(tmp_path))

    # when the sample is asked for twice
    first = client.get("/demo/video/sample-lecture.mp4")
    made = (tmp_path / demo_video.SAMPLE_NAME).stat()
    second = client.get("/demo/video/sample-lecture.mp4")

    # then it is an mp4 of the sample's size and length, with sound, made only the first time
    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "video/mp4"
    body = b"".join(first.streaming_content)  # type: ignore[attr-defined]
    assert body == b"".join(second.streaming_content)  # type: ignore[attr-defined]
    assert (tmp_path / demo_video.SAMPLE_NAME).stat().st_mtime_ns == made.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir()) == [demo_video.SAMPLE_NAME]
    probed = subprocess.run(
        ffprobe_command(tmp_path / demo_video.SAMPLE_NAME), capture_output=True, timeout=60
    )
    probe = parse_probe(probed.stdout, returncode=probed.returncode, stderr=probed.stderr)
    assert (probe.width, probe.height) == (1280, 720)
    assert probe.duration == pytest.approx(demo_video.SAMPLE_SECONDS, abs=0.2)
    assert probe.has_audio


def test_without_ffmpeg_the_sample_is_a_503_that_says_how_to_get_it(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given no sample yet, and no ffmpeg on the PATH
    monkeypatch.setenv("DEMO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))

    # when the sample is asked for
    response = client.get("/demo/video/sample-lecture.mp4")

    # then the answer says what to install, and nothing was left behind
    assert response.status_code == 503
    assert "make ffmpeg" in response.content.decode()
    assert not (tmp_path / "cache").exists()
