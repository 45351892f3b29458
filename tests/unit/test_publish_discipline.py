"""Publishing outside the push core goes through ``realtime.store.publish_on_commit`` only.

A source scan (no imports): any use of the store's ``publish`` / ``apublish`` outside
``realtime/`` is a finding, except the worker runner, which hands ``store.publish`` to its
republisher (no transaction to wait for on that path; its progress throttle gets
``realtime.rebuild.publish_rebuilding``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("domains", "project", "workers")
RAW_PUBLISH = frozenset({"publish", "apublish"})
# module -> why it may use the raw publish
ALLOWED = {
    "workers/runner.py": "Republisher(store.publish)",
}


def _raw_publishes(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in RAW_PUBLISH
            and isinstance(node.value, ast.Name)
            and node.value.id == "store"
        ):
            found.append(f"{path.relative_to(root)}:{node.lineno} store.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "realtime.store":
            found += [
                f"{path.relative_to(root)}:{node.lineno} imports {alias.name}"
                for alias in node.names
                if alias.name in RAW_PUBLISH
            ]
    return found


def _findings(root: Path = ROOT) -> list[str]:
    found = []
    for package in CHECKED:
        for path in sorted((root / package).rglob("*.py")):
            if str(path.relative_to(root)) not in ALLOWED:
                found += _raw_publishes(path, root)
    return found


def test_only_the_push_core_and_the_worker_runner_publish_without_waiting_for_a_commit() -> None:
    # given every module of the domains, the project and the workers
    # when their source is scanned for the store's raw publish
    found = _findings()

    # then none uses it: services publish through store.publish_on_commit
    assert found == []


def test_the_scan_finds_a_raw_publish(tmp_path: Path) -> None:
    # given a tree whose domains module publishes directly, both ways
    (tmp_path / "domains").mkdir()
    (tmp_path / "domains" / "_scan_probe.py").write_text(
        "from realtime import store\n"
        "from realtime.store import publish\n"
        "store.publish(1, topic, change)\n",
        encoding="utf-8",
    )

    # when that tree is scanned
    found = _findings(tmp_path)

    # then both uses are reported
    assert found == [
        "domains/_scan_probe.py:2 imports publish",
        "domains/_scan_probe.py:3 store.publish",
    ]


def test_the_allowed_module_still_exists() -> None:
    # given the exemptions / when checked / then each names a real module that uses the publish
    for module in ALLOWED:
        assert _raw_publishes(ROOT / module), f"{module} no longer needs its exemption"
