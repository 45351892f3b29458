"""Reading metrics in tests: this process's registry, or a real server's ``/metrics``."""

from __future__ import annotations

import urllib.request

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from realtime import prometheus


def sample(name: str, **labels: str) -> float:
    """A sample of this process's registry after flushing the tallies (0 when absent)."""
    prometheus.flush()
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """An exposition as {(sample name, sorted labels): value}."""
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            samples[(item.name, tuple(sorted(item.labels.items())))] = item.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10) -> str:
    """GET a ``/metrics`` URL and return its text (raises on any status but 200)."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        return response.read().decode()
