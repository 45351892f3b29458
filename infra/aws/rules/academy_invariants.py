"""cfn-lint rules for the invariants of academy-realtime's templates (infra/README.md).

Loaded with ``cfn-lint --append-rules infra/aws/rules``. Each rule reads one template; the
values they compare against are the design's own (maxReceiveCount 3, volatile-lru), the
template's ``Fleet`` mapping (the caps, which tests/infra checks against the Python code), and
the ASGI server's ping interval in infra/asgi/academy-asgi@.service.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

MAX_RECEIVE_COUNT = 3
SQS_DEFAULT_RETENTION = 345_600
EVICTION_POLICY = "volatile-lru"
KIND_TAG = "academy:queue-kind"
ASGI_UNIT = Path(__file__).resolve().parents[2] / "asgi" / "academy-asgi@.service"


def _int(value: Any) -> int | None:
    """A literal integer (CloudFormation accepts numbers as strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _find_in_map(cfn: Template, value: Any) -> Any:
    """Resolve a literal ``Fn::FindInMap`` (three plain strings); anything else as is."""
    if isinstance(value, dict) and list(value) == ["Fn::FindInMap"]:
        args = value["Fn::FindInMap"]
        if isinstance(args, list) and len(args) == 3 and all(isinstance(a, str) for a in args):
            mapping = cfn.template.get("Mappings", {}).get(args[0], {})
            return mapping.get(args[1], {}).get(args[2])
    return value


def _properties(resource: Any) -> dict[str, Any]:
    properties = resource.get("Properties", {}) if isinstance(resource, dict) else {}
    return properties if isinstance(properties, dict) else {}


def _dead_letter_target(policy: Any) -> str | None:
    """The logical name in ``deadLetterTargetArn: !GetAtt <Name>.Arn``, else None."""
    if not isinstance(policy, dict):
        return None
    arn = policy.get("deadLetterTargetArn")
    if isinstance(arn, dict) and list(arn) == ["Fn::GetAtt"]:
        target = arn["Fn::GetAtt"]
        if isinstance(target, str):
            target = target.split(".", 1)
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            return str(target[0])
    return None


def _ping_interval() -> int | None:
    try:
        text = ASGI_UNIT.read_text(encoding="utf-8")
    except OSError:
        return None
    found = re.search(r"--ws-ping-interval[ =]+(\d+)", text)
    return int(found.group(1)) if found else None


class QueueRedrive(CloudFormationLintRule):
    id = "E9301"
    shortdesc = "Every work queue redrives to a dead-letter queue after 3 receives"
    description = (
        "Each AWS::SQS::Queue that is not itself a dead-letter queue has a RedrivePolicy whose "
        "deadLetterTargetArn is !GetAtt <queue in this template>.Arn and whose maxReceiveCount "
        "is 3 (SQS_MAX_RECEIVE_COUNT); a dead-letter queue has no redrive of its own."
    )
    source_url = "infra/README.md"
    tags = ["academy", "sqs"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        queues = cfn.get_resources(["AWS::SQS::Queue"])
        targets = {
            _dead_letter_target(_properties(q).get("RedrivePolicy")) for q in queues.values()
        }
        matches = []
        for name, queue in queues.items():
            policy = _properties(queue).get("RedrivePolicy")
            path = ["Resources", name, "Properties", "RedrivePolicy"]
            if name in targets:
                if policy is not None:
                    matches.append(RuleMatch(path, f"dead-letter queue {name} must not redrive"))
                continue
            if policy is None:
                matches.append(RuleMatch(path[:-1], f"queue {name} has no RedrivePolicy"))
                continue
            target = _dead_letter_target(policy)
            if target is None or target not in queues:
                matches.append(
                    RuleMatch(
                        [*path, "deadLetterTargetArn"],
                        f"queue {name}: deadLetterTargetArn must be !GetAtt <a queue of this "
                        "template>.Arn",
                    )
                )
            given = policy.get("maxReceiveCount") if isinstance(policy, dict) else None
            if _int(given) != MAX_RECEIVE_COUNT:
                matches.append(
                    RuleMatch(
                        [*path, "maxReceiveCount"],
                        f"queue {name}: maxReceiveCount must be {MAX_RECEIVE_COUNT}, "
                        f"found {given!r}",
                    )
                )
        return matches


class DeadLetterRetention(CloudFormationLintRule):
    id = "E9302"
    shortdesc = "A dead-letter queue retains messages longer than its source queue"
    description = (
        "SQS keeps a message's original enqueue time when it moves it to the dead-letter queue, "
        "so the DLQ's MessageRetentionPeriod (set explicitly) must exceed the source queue's."
    )
    source_url = "infra/README.md"
    tags = ["academy", "sqs"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        queues = cfn.get_resources(["AWS::SQS::Queue"])
        matches = []
        for name, queue in queues.items():
            target = _dead_letter_target(_properties(queue).get("RedrivePolicy"))
            if target is None or target not in queues:
                continue
            source_value = _properties(queue).get("MessageRetentionPeriod")
            source = SQS_DEFAULT_RETENTION if source_value is None else _int(source_value)
            dlq = _int(_properties(queues[target]).get("MessageRetentionPeriod"))
            path = ["Resources", target, "Properties", "MessageRetentionPeriod"]
            if source is None or dlq is None:
                matches.append(
                    RuleMatch(path, f"{target} and {name}: retention must be literal seconds")
                )
            elif dlq <= source:
                matches.append(
                    RuleMatch(
                        path,
                        f"dead-letter queue {target} keeps messages {dlq} s, not longer than "
                        f"its source {name} ({source} s)",
                    )
                )
        return matches


class FleetCap(CloudFormationLintRule):
    id = "E9303"
    shortdesc = "A worker Auto Scaling group's MaxSize is its kind's hard cap"
    description = (
        "Each AWS::AutoScaling::AutoScalingGroup tagged academy:queue-kind has MaxSize equal to "
        "Mappings.Fleet.<kind>.HardCap (a literal or !FindInMap, never a parameter), MinSize of "
        "at least 1 (backlog per instance needs an instance) and collects "
        "GroupInServiceInstances (the metric math's denominator)."
    )
    source_url = "infra/README.md"
    tags = ["academy", "autoscaling"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        fleet = cfn.template.get("Mappings", {}).get("Fleet", {})
        matches = []
        for name, group in cfn.get_resources(["AWS::AutoScaling::AutoScalingGroup"]).items():
            properties = _properties(group)
            path = ["Resources", name, "Properties"]
            tags = properties.get("Tags", [])
            kinds = [
                t.get("Value") for t in tags if isinstance(t, dict) and t.get("Key") == KIND_TAG
            ]
            if len(kinds) != 1 or not isinstance(kinds[0], str):
                matches.append(RuleMatch([*path, "Tags"], f"{name}: needs one {KIND_TAG} tag"))
                continue
            kind = kinds[0]
            cap = _int(fleet.get(kind, {}).get("HardCap"))
            if cap is None:
                matches.append(
                    RuleMatch(["Mappings", "Fleet"], f"no Fleet.{kind}.HardCap for {name}")
                )
                continue
            max_size = _int(_find_in_map(cfn, properties.get("MaxSize")))
            if max_size != cap:
                matches.append(
                    RuleMatch(
                        [*path, "MaxSize"],
                        f"{name}: MaxSize must be the {kind} hard cap {cap}, found "
                        f"{properties.get('MaxSize')!r}",
                    )
                )
            min_size = _int(_find_in_map(cfn, properties.get("MinSize")))
            if min_size is None or min_size < 1:
                matches.append(RuleMatch([*path, "MinSize"], f"{name}: MinSize must be >= 1"))
            collected = [
                metric
                for entry in properties.get("MetricsCollection", [])
                if isinstance(entry, dict)
                for metric in entry.get("Metrics", [])
            ]
            if "GroupInServiceInstances" not in collected:
                matches.append(
                    RuleMatch(
                        [*path, "MetricsCollection"],
                        f"{name}: must collect GroupInServiceInstances",
                    )
                )
        return matches


class LoadBalancerIdleTimeout(CloudFormationLintRule):
    id = "E9304"
    shortdesc = "The ALB idle timeout is above the WebSocket ping interval"
    description = (
        "Each application load balancer sets idle_timeout.timeout_seconds explicitly, above "
        "the server's --ws-ping-interval in infra/asgi/academy-asgi@.service, so open "
        "WebSockets are never cut as idle."
    )
    source_url = "infra/README.md"
    tags = ["academy", "elbv2"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        balancers = cfn.get_resources(["AWS::ElasticLoadBalancingV2::LoadBalancer"])
        matches = []
        for name, balancer in balancers.items():
            properties = _properties(balancer)
            if properties.get("Type", "application") != "application":
                continue
            path = ["Resources", name, "Properties", "LoadBalancerAttributes"]
            ping = _ping_interval()
            if ping is None:
                matches.append(RuleMatch(path, f"no --ws-ping-interval found in {ASGI_UNIT}"))
                continue
            timeouts = [
                _int(a.get("Value"))
                for a in properties.get("LoadBalancerAttributes", [])
                if isinstance(a, dict) and a.get("Key") == "idle_timeout.timeout_seconds"
            ]
            if len(timeouts) != 1 or timeouts[0] is None:
                matches.append(
                    RuleMatch(path, f"{name}: set idle_timeout.timeout_seconds (literal seconds)")
                )
            elif timeouts[0] <= ping:
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: idle timeout {timeouts[0]} s must be above the WebSocket "
                        f"ping interval {ping} s",
                    )
                )
        return matches


class CacheEvictionPolicy(CloudFormationLintRule):
    id = "E9305"
    shortdesc = "ElastiCache uses this template's parameter group with volatile-lru"
    description = (
        "Each AWS::ElastiCache::ParameterGroup sets maxmemory-policy volatile-lru (only keys "
        "with a TTL are evicted, PROTOCOL.md section 2), and every replication group or cache "
        "cluster uses a parameter group of the template (!Ref), never an implicit default."
    )
    source_url = "infra/README.md"
    tags = ["academy", "elasticache"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        groups = cfn.get_resources(["AWS::ElastiCache::ParameterGroup"])
        matches = []
        for name, group in groups.items():
            policy = _properties(group).get("Properties", {}).get("maxmemory-policy")
            if policy != EVICTION_POLICY:
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "Properties", "maxmemory-policy"],
                        f"{name}: maxmemory-policy must be {EVICTION_POLICY}, found {policy!r}",
                    )
                )
        users = cfn.get_resources(
            ["AWS::ElastiCache::ReplicationGroup", "AWS::ElastiCache::CacheCluster"]
        )
        for name, user in users.items():
            reference = _properties(user).get("CacheParameterGroupName")
            if not (
                isinstance(reference, dict)
                and list(reference) == ["Ref"]
                and reference["Ref"] in groups
            ):
                matches.append(
                    RuleMatch(
                        ["Resources", name, "Properties", "CacheParameterGroupName"],
                        f"{name}: CacheParameterGroupName must be !Ref a parameter group of "
                        "this template",
                    )
                )
        return matches
