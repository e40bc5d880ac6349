"""Prometheus metrics: requests by route and status, latency, pool usage.

Each app has its own registry, so tests that build many apps do not collide
and each worker process reports its own figures (label them by instance in
Prometheus, or scrape each worker through its own port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _PoolCollector(Collector):
    def __init__(self, pool_getter: Callable):
        self._pool = pool_getter

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool()
        if pool is None:
            return
        size = pool.get_size()
        idle = pool.get_idle_size()
        g = GaugeMetricFamily("cbt_db_pool_connections", "Database pool connections", labels=["state"])
        g.add_metric(["in_use"], size - idle)
        g.add_metric(["idle"], idle)
        g.add_metric(["max"], pool.get_max_size())
        yield g


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cbt_http_requests",
            "HTTP requests handled",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cbt_http_request_duration_seconds",
            "Time to handle a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.save_groups = Histogram(
            "cbt_autosave_saves_per_statement",
            "Candidates' batches saved by one statement (autosave.GroupCommit)",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )

    def save_group(self, saves: int) -> None:
        self.save_groups.observe(saves)

    def watch_pool(self, pool_getter: Callable) -> None:
        self.registry.register(_PoolCollector(pool_getter))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
