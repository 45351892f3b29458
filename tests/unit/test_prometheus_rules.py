"""infra/prometheus/academy.rules.yml names only metrics the code defines (no Prometheus here
to load it: this is the structural check)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import realtime.metrics
import workers.metrics

RULES = Path(__file__).resolve().parents[2] / "infra" / "prometheus" / "academy.rules.yml"
NAME = re.compile(r"\b(academy_[a-z_]+)")


def _defined() -> set[str]:
    # realtime.metrics and workers.metrics are imported above: their metrics are registered
    assert realtime.metrics.CONNECTIONS is not None
    assert workers.metrics.JOBS is not None
    names = set()
    for family in REGISTRY.collect():
        names |= {sample.name for sample in family.samples} | {family.name}
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
    return names


def test_every_metric_a_rule_names_is_defined_by_the_code() -> None:
    # given the rules file and the metrics the code registers
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    expressions = [rule["expr"] for rule in rules]

    # when the metric names are read from every expression
    named = {name for expr in expressions for name in NAME.findall(expr)}

    # then each one exists, and the fallback polling rate is recorded
    assert named
    assert named <= _defined(), named - _defined()
    assert any(rule.get("record") == "academy:fallback_polls:rate1m" for rule in rules)
