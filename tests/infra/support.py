"""Helpers for the tests of infra/aws/: loading templates, reading their parts, linting.

The Python side of every comparison comes from the project's settings and worker queue
config; ``worker_queue_configs`` is the one place that knows where that config lives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from cfnlint.api import lint
from cfnlint.config import ManualArgs
from cfnlint.decode import cfn_yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "infra" / "aws"
RULES = TEMPLATES / "rules"
ASGI_UNIT = ROOT / "infra" / "asgi" / "academy-asgi@.service"
NGINX_CONF = ROOT / "infra" / "proxy" / "nginx.conf"
REDIS_CONF = ROOT / "infra" / "redis" / "redis.conf"
CLIENT_TS = ROOT / "frontend-client" / "src" / "client.ts"
KIND_TAG = "academy:queue-kind"
ROLE_TAG = "academy:queue-role"
NGINX_DEFAULT_KEEPALIVE = 75  # nginx's keepalive_timeout when the config does not set it


def worker_queue_configs() -> dict[str, Any]:
    """Each queue kind's worker config (caps, timings, names), keyed by kind."""
    from workers.config import queue_config

    return {kind: queue_config(kind) for kind in settings.WORKER_QUEUES}


# --- AWS on the test run's moto server ----------------------------------------------------
def aws_client(service: str) -> Any:
    return boto3.client(
        service, endpoint_url=settings.AWS_ENDPOINT_URL or None, region_name=settings.AWS_REGION
    )


@dataclass
class QueueStack:
    """A deployed copy of queues.yaml: its stack name, queue prefix and clients."""

    name: str
    prefix: str
    cloudformation: Any
    sqs: Any

    def queue_url(self, name: str) -> str:
        return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]


# --- templates ----------------------------------------------------------------------------
def template_text(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def template(name: str) -> dict[str, Any]:
    """The template as CloudFormation sees it (short tags become Ref / Fn::* mappings)."""
    return cfn_yaml.loads(template_text(name), name)


def resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in tpl["Resources"].items() if r["Type"] == kind}


def properties(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("Properties", {})


def tag(resource: dict[str, Any], key: str) -> str | None:
    for entry in properties(resource).get("Tags", []):
        if entry["Key"] == key:
            return str(entry["Value"])
    return None


def by_tags(tpl: dict[str, Any], kind: str, **tags: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Resources of a type keyed by their academy:queue-kind tag, filtered by other tags."""
    found = {}
    for name, resource in resources(tpl, kind).items():
        if all(tag(resource, f"academy:{k.replace('_', '-')}") == v for k, v in tags.items()):
            found[str(tag(resource, KIND_TAG))] = (name, resource)
    return found


def find_in_map(tpl: dict[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, key, attribute = value["Fn::FindInMap"]
        return tpl["Mappings"][mapping][key][attribute]
    return value


def sub_with_default(tpl: dict[str, Any], value: Any) -> str:
    """A ``!Sub`` string with each ${Parameter} replaced by the parameter's default."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return re.sub(
        r"\$\{(\w+)\}", lambda m: str(tpl["Parameters"][m.group(1)]["Default"]), str(text)
    )


def imported(value: Any) -> str:
    """The export suffix of ``Fn::ImportValue: !Sub "${QueueStackName}-<suffix>"``."""
    assert isinstance(value, dict), f"not an import: {value!r}"
    assert list(value) == ["Fn::ImportValue"], f"not an import: {value!r}"
    text = value["Fn::ImportValue"]["Fn::Sub"]
    prefix = "${QueueStackName}-"
    assert text.startswith(prefix), text
    return text[len(prefix) :]


def alarm_metric(alarm: dict[str, Any]) -> dict[str, Any]:
    """What an alarm watches: namespace, metric, dimensions, comparison, threshold and, for
    metric math alarms, the returned expression."""
    props = properties(alarm)
    if "Metrics" in props:
        stats = [m for m in props["Metrics"] if "MetricStat" in m]
        returned = [m for m in props["Metrics"] if m.get("ReturnData", True)]
        assert len(stats) == 1, "one metric per alarm"
        assert len(returned) == 1, "one returned series per alarm"
        metric = stats[0]["MetricStat"]["Metric"]
        expression = returned[0].get("Expression")
    else:
        metric, expression = props, None
    return {
        "namespace": metric["Namespace"],
        "metric": metric["MetricName"],
        "dimensions": {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])},
        "comparison": props["ComparisonOperator"],
        "threshold": props["Threshold"],
        "expression": expression,
        "actions": props.get("AlarmActions", []),
    }


def alarms(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: alarm_metric(a) for n, a in resources(tpl, "AWS::CloudWatch::Alarm").items()}


# --- linting ------------------------------------------------------------------------------
def lint_rule_ids(text: str) -> list[str]:
    """The rule ids cfn-lint reports for a template text, with the project's rules loaded."""
    config = ManualArgs(append_rules=[str(RULES)], regions=["ap-northeast-2"])
    return sorted(match.rule.id for match in lint(text, config=config))


# --- the deployment's other config files --------------------------------------------------
def server_ping_interval() -> int:
    found = re.search(r"--ws-ping-interval[ =]+(\d+)", ASGI_UNIT.read_text(encoding="utf-8"))
    assert found, f"no --ws-ping-interval in {ASGI_UNIT}"
    return int(found.group(1))


def client_ping_interval() -> float:
    text = CLIENT_TS.read_text(encoding="utf-8")
    found = re.search(r"pingIntervalMs \?\? ([\d_]+)", text)
    assert found, f"no pingIntervalMs default in {CLIENT_TS}"
    return int(found.group(1).replace("_", "")) / 1000


def nginx_keepalive_timeout() -> int:
    found = re.search(r"^\s*keepalive_timeout\s+(\d+)s?", NGINX_CONF.read_text(), re.MULTILINE)
    return int(found.group(1)) if found else NGINX_DEFAULT_KEEPALIVE


def redis_conf(directive: str) -> str:
    found = re.search(
        rf"^{re.escape(directive)}\s+(.+)$", REDIS_CONF.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert found, f"no {directive} in {REDIS_CONF}"
    return found.group(1).strip()
