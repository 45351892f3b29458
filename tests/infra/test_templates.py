"""The CloudFormation templates agree with the project's code, and their lint rules bite.

Each invariant is checked against the Python source of truth (settings and the worker queue
config) or the deployment file that defines it, so changing a cap, a timing or a ping
interval on one side only fails here. The cfn-lint rules of infra/aws/rules are shown to
reject a template broken in exactly the way each rule guards against.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from tests.infra.support import (
    TEMPLATES,
    alarms,
    by_tags,
    client_ping_interval,
    find_in_map,
    imported,
    lint_rule_ids,
    nginx_keepalive_timeout,
    properties,
    redis_conf,
    resources,
    server_ping_interval,
    sub_with_default,
    tag,
    template,
    template_text,
    worker_queue_configs,
)

TEMPLATE_NAMES = sorted(path.name for path in TEMPLATES.glob("*.yaml"))
KINDS = sorted(settings.WORKER_QUEUES)


def capitalised(kind: str) -> str:
    return kind.capitalize()


# --- cfn-lint -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_template_passes_cfn_lint_with_the_project_rules(name: str) -> None:
    # given
    text = template_text(name)

    # when
    found = lint_rule_ids(text)

    # then
    assert found == []


BROKEN = [
    pytest.param("queues.yaml", "maxReceiveCount: 3", "maxReceiveCount: 4", "E9301", id="redrive"),
    pytest.param(
        "queues.yaml",
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt AiDeadLetterQueue.Arn\n"
        "        maxReceiveCount: 3\n",
        "",
        "E9301",
        id="no-redrive",
    ),
    pytest.param(
        "queues.yaml",
        "MessageRetentionPeriod: 1209600",
        "MessageRetentionPeriod: 345600",
        "E9302",
        id="dlq-retention",
    ),
    pytest.param(
        "workers.yaml",
        "MaxSize: !FindInMap [Fleet, video, HardCap]",
        'MaxSize: "4"',
        "E9303",
        id="fleet-cap",
    ),
    pytest.param("workers.yaml", 'MinSize: "1"', 'MinSize: "0"', "E9303", id="fleet-min"),
    pytest.param(
        "edge.yaml",
        '{Key: idle_timeout.timeout_seconds, Value: "60"}',
        '{Key: idle_timeout.timeout_seconds, Value: "20"}',
        "E9304",
        id="idle-timeout",
    ),
    pytest.param(
        "cache.yaml",
        "maxmemory-policy: volatile-lru",
        "maxmemory-policy: allkeys-lru",
        "E9305",
        id="eviction-policy",
    ),
    pytest.param(
        "cache.yaml",
        "CacheParameterGroupName: !Ref LiveStateParameters",
        "CacheParameterGroupName: default.redis7",
        "E9305",
        id="default-parameter-group",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "rule"), BROKEN)
def test_a_broken_invariant_fails_cfn_lint_with_its_rule(
    name: str, old: str, new: str, rule: str
) -> None:
    # given
    text = template_text(name)
    assert old in text, "the fixture's anchor moved; update this case"
    broken = text.replace(old, new, 1)

    # when
    found = lint_rule_ids(broken)

    # then
    assert set(found) == {rule}


# --- queues -------------------------------------------------------------------------------
def test_queues_cover_exactly_the_project_kinds_each_with_a_dead_letter_queue() -> None:
    # given
    tpl = template("queues.yaml")

    # when
    work = by_tags(tpl, "AWS::SQS::Queue", queue_role="work")
    dead = by_tags(tpl, "AWS::SQS::Queue", queue_role="dead-letter")

    # then
    assert sorted(work) == KINDS
    assert sorted(dead) == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_queue_names_and_timings_are_the_projects(kind: str) -> None:
    # given
    config = worker_queue_configs()[kind]
    tpl = template("queues.yaml")
    _, queue = by_tags(tpl, "AWS::SQS::Queue", queue_role="work")[kind]
    dlq_name, dlq = by_tags(tpl, "AWS::SQS::Queue", queue_role="dead-letter")[kind]

    # when
    q, d = properties(queue), properties(dlq)

    # then
    assert sub_with_default(tpl, q["QueueName"]) == config.name
    assert sub_with_default(tpl, d["QueueName"]) == config.dlq_name
    assert q["VisibilityTimeout"] == config.visibility_timeout
    assert q["ReceiveMessageWaitTimeSeconds"] == settings.SQS_WAIT_TIME_SECONDS
    assert q["MessageRetentionPeriod"] == settings.SQS_RETENTION_SECONDS
    assert d["MessageRetentionPeriod"] == settings.SQS_DLQ_RETENTION_SECONDS
    assert d["MessageRetentionPeriod"] > q["MessageRetentionPeriod"]
    assert q["RedrivePolicy"]["maxReceiveCount"] == settings.SQS_MAX_RECEIVE_COUNT == 3
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_name, "Arn"]}


def test_the_queue_prefix_default_is_the_projects() -> None:
    # given
    tpl = template("queues.yaml")

    # when
    default = tpl["Parameters"]["QueuePrefix"]["Default"]

    # then
    assert default == settings.SQS_QUEUE_PREFIX


# --- worker fleets ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_each_fleet_is_capped_at_the_kinds_hard_concurrency(kind: str) -> None:
    # given
    cap = worker_queue_configs()[kind].max_concurrency
    tpl = template("workers.yaml")
    name, group = by_tags(tpl, "AWS::AutoScaling::AutoScalingGroup")[kind]
    launch = tpl["Resources"][f"{capitalised(kind)}LaunchTemplate"]

    # when
    max_size = int(find_in_map(tpl, properties(group)["MaxSize"]))
    slots = int(tpl["Mappings"]["Fleet"][kind]["SlotsPerInstance"])
    user_data = properties(launch)["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]

    # then
    assert max_size == cap, f"{name}: MaxSize {max_size}, hard cap {cap}"
    assert slots == 1, "one job per instance, so instances are the concurrent jobs"
    assert max_size * slots == cap
    assert f"run_worker --queue {kind} --concurrency ${{Slots}}" in user_data[0]
    assert user_data[1]["Slots"] == {"Fn::FindInMap": ["Fleet", kind, "SlotsPerInstance"]}
    assert imported(user_data[1]["QueueUrl"]) == f"{capitalised(kind)}QueueUrl"
    assert int(properties(group)["MinSize"]) >= 1


def test_fleets_cover_exactly_the_project_kinds() -> None:
    # given
    tpl = template("workers.yaml")

    # when
    groups = by_tags(tpl, "AWS::AutoScaling::AutoScalingGroup")

    # then
    assert sorted(groups) == KINDS
    assert sorted(tpl["Mappings"]["Fleet"]) == KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_each_fleet_tracks_backlog_per_in_service_instance(kind: str) -> None:
    # given
    tpl = template("workers.yaml")
    group_name, group = by_tags(tpl, "AWS::AutoScaling::AutoScalingGroup")[kind]
    policy = next(
        p
        for p in resources(tpl, "AWS::AutoScaling::ScalingPolicy").values()
        if properties(p)["AutoScalingGroupName"] == {"Ref": group_name}
    )

    # when
    tracking = properties(policy)["TargetTrackingConfiguration"]
    queries = {q["Id"]: q for q in tracking["CustomizedMetricSpecification"]["Metrics"]}
    returned = [q for q in queries.values() if q.get("ReturnData")]
    visible = queries["visible"]["MetricStat"]["Metric"]
    inservice = queries["inservice"]["MetricStat"]["Metric"]
    collected = properties(group)["MetricsCollection"][0]["Metrics"]

    # then
    assert properties(policy)["PolicyType"] == "TargetTrackingScaling"
    assert [q["Expression"] for q in returned] == ["visible / inservice"]
    assert (visible["Namespace"], visible["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert imported(visible["Dimensions"][0]["Value"]) == f"{capitalised(kind)}QueueName"
    assert (inservice["Namespace"], inservice["MetricName"]) == (
        "AWS/AutoScaling",
        "GroupInServiceInstances",
    )
    assert inservice["Dimensions"][0]["Value"] == {"Ref": group_name}
    assert "GroupInServiceInstances" in collected
    assert find_in_map(tpl, tracking["TargetValue"]) > 0


# --- alarms -------------------------------------------------------------------------------
def _watching(found: dict[str, dict], metric: str, **dimensions: object) -> list[dict]:
    return [
        a
        for a in found.values()
        if a["metric"] == metric and all(a["dimensions"].get(k) == v for k, v in dimensions.items())
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_each_queue_has_dead_letter_depth_and_age_alarms_and_a_source_age_alarm(
    kind: str,
) -> None:
    # given
    found = alarms(template("workers.yaml"))
    dlq = f"{capitalised(kind)}DeadLetterQueueName"
    source = f"{capitalised(kind)}QueueName"

    def on(queue: str, metric: str) -> list[dict]:
        return [
            a
            for a in _watching(found, metric)
            if "QueueName" in a["dimensions"] and imported(a["dimensions"]["QueueName"]) == queue
        ]

    # when
    dlq_depth = on(dlq, "ApproximateNumberOfMessagesVisible")
    dlq_age = on(dlq, "ApproximateAgeOfOldestMessage")
    source_age = on(source, "ApproximateAgeOfOldestMessage")

    # then
    assert [(a["comparison"], a["threshold"]) for a in dlq_depth] == [("GreaterThanThreshold", 0)]
    assert len(dlq_age) == 1
    assert len(source_age) == 1


@pytest.mark.parametrize("node", ["001", "002"])
def test_each_redis_node_has_memory_eviction_connection_and_cpu_alarms(node: str) -> None:
    # given
    tpl = template("cache.yaml")
    found = alarms(tpl)
    cluster = {"Fn::Sub": f"${{ReplicationGroupId}}-{node}"}

    # when
    memory = _watching(found, "DatabaseMemoryUsagePercentage", CacheClusterId=cluster)
    evictions = _watching(found, "Evictions", CacheClusterId=cluster)
    connections = _watching(found, "CurrConnections", CacheClusterId=cluster)
    engine_cpu = _watching(found, "EngineCPUUtilization", CacheClusterId=cluster)
    host_cpu = _watching(found, "CPUUtilization", CacheClusterId=cluster)

    # then
    assert [(a["comparison"], a["threshold"]) for a in memory] == [("GreaterThanThreshold", 70)]
    assert [(a["comparison"], a["threshold"]) for a in evictions] == [("GreaterThanThreshold", 0)]
    assert len(connections) == 1
    assert int(tpl["Parameters"]["ConnectionsAlarmThreshold"]["MaxValue"]) <= 65_000
    assert len(engine_cpu) == 1
    assert [a["expression"] for a in host_cpu] == [{"Fn::Sub": "cpu * ${NodeVcpus}"}]


def test_postgres_alarms_watch_connections_at_80_percent_cpu_memory_and_storage() -> None:
    # given
    found = alarms(template("database.yaml"))

    # when
    connections = _watching(found, "DatabaseConnections")
    cpu = _watching(found, "CPUUtilization")
    memory = _watching(found, "FreeableMemory")
    storage = _watching(found, "FreeStorageSpace")

    # then
    assert [(a["comparison"], a["threshold"], a["expression"]) for a in connections] == [
        (
            "GreaterThanOrEqualToThreshold",
            80,
            {"Fn::Sub": "100 * connections / ${MaxConnections}"},
        )
    ]
    assert [(a["comparison"], a["threshold"]) for a in cpu] == [("GreaterThanThreshold", 80)]
    assert [a["comparison"] for a in memory] == ["LessThanThreshold"]
    assert [a["comparison"] for a in storage] == ["LessThanThreshold"]


def test_the_load_balancer_alarms_on_5xx_and_rejected_connections() -> None:
    # given
    found = alarms(template("edge.yaml"))

    # when
    names = sorted(a["metric"] for a in found.values())
    rejected = _watching(found, "RejectedConnectionCount")

    # then
    assert names == [
        "HTTPCode_ELB_5XX_Count",
        "HTTPCode_Target_5XX_Count",
        "RejectedConnectionCount",
    ]
    assert [(a["comparison"], a["threshold"]) for a in rejected] == [("GreaterThanThreshold", 0)]


@pytest.mark.parametrize("name", ["workers.yaml", "cache.yaml", "database.yaml", "edge.yaml"])
def test_every_alarm_notifies_the_alarm_topic(name: str) -> None:
    # given
    found = alarms(template(name))

    # when
    silent = [alarm for alarm, a in found.items() if a["actions"] != [{"Ref": "AlarmTopicArn"}]]

    # then
    assert found
    assert silent == []


# --- ElastiCache --------------------------------------------------------------------------
def test_the_cache_parameter_group_matches_the_redis_config() -> None:
    # given
    tpl = template("cache.yaml")
    (group,) = resources(tpl, "AWS::ElastiCache::ParameterGroup").values()
    hard, soft, seconds = redis_conf("client-output-buffer-limit pubsub").split()

    # when
    parameters = properties(group)["Properties"]

    # then
    assert parameters["maxmemory-policy"] == redis_conf("maxmemory-policy") == "volatile-lru"
    assert int(parameters["client-output-buffer-limit-pubsub-hard-limit"]) == _bytes(hard)
    assert int(parameters["client-output-buffer-limit-pubsub-soft-limit"]) == _bytes(soft)
    assert parameters["client-output-buffer-limit-pubsub-soft-seconds"] == seconds
    assert parameters["tcp-keepalive"] == redis_conf("tcp-keepalive")
    assert parameters["timeout"] == redis_conf("timeout")


def _bytes(size: str) -> int:
    units = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
    return int(size[:-2]) * units[size[-2:].lower()] if size[-2:].lower() in units else int(size)


def test_the_cache_is_one_primary_and_a_replica_without_cluster_mode() -> None:
    # given
    tpl = template("cache.yaml")

    # when
    (group,) = resources(tpl, "AWS::ElastiCache::ReplicationGroup").values()
    props = properties(group)

    # then
    assert props["NumCacheClusters"] == 2
    assert "NumNodeGroups" not in props
    assert props["AutomaticFailoverEnabled"] is True
    assert props["CacheParameterGroupName"] == {"Ref": "LiveStateParameters"}


# --- ALB ----------------------------------------------------------------------------------
def test_the_alb_idle_timeout_outlasts_both_ping_intervals_and_not_nginx_keepalive() -> None:
    # given
    tpl = template("edge.yaml")
    (balancer,) = resources(tpl, "AWS::ElasticLoadBalancingV2::LoadBalancer").values()

    # when
    attributes = {a["Key"]: a["Value"] for a in properties(balancer)["LoadBalancerAttributes"]}
    idle = int(attributes["idle_timeout.timeout_seconds"])

    # then
    assert idle > server_ping_interval()
    assert idle > client_ping_interval()
    assert idle < nginx_keepalive_timeout()


def test_the_target_group_checks_the_projects_health_endpoint() -> None:
    # given
    tpl = template("edge.yaml")
    (group,) = resources(tpl, "AWS::ElasticLoadBalancingV2::TargetGroup").values()

    # when
    path = properties(group)["HealthCheckPath"]

    # then
    assert path == reverse("health")


def test_queue_resources_carry_their_kind_tag() -> None:
    # given
    tpl = template("queues.yaml")

    # when
    untagged = [
        n
        for n, r in resources(tpl, "AWS::SQS::Queue").items()
        if tag(r, "academy:queue-kind") is None
    ]

    # then
    assert untagged == []
