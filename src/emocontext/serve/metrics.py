"""Prometheus metrics of the service (prometheus-client), in a registry of its own per app.

Exposed at ``GET /metrics`` in the Prometheus text format:

* ``emocontext_http_requests_total{method, route, status}`` -- answered requests;
* ``emocontext_http_request_duration_seconds{route}`` -- latency histogram (upload to answer);
* ``emocontext_job_duration_seconds{outcome}`` -- time in a worker per job;
* ``emocontext_queue_depth`` -- accepted jobs waiting for a worker;
* ``emocontext_jobs_running``, ``emocontext_slots_in_use`` (uploads and jobs counted against
  ``workers + queue``), ``emocontext_workers_ready``;
* ``emocontext_failures_total{kind}`` -- refused requests and failed jobs by kind (``too_large``,
  ``not_media``, ``queue_full``, ``decode``, ``time_limit``, ``worker_crash``, ...).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "MetricsMiddleware", "CONTENT_TYPE_LATEST"]

#: latency buckets in seconds: a health check to a long clip
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    """The service's metrics; gauges read their values from callables given by the job manager."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "emocontext_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "emocontext_http_request_duration_seconds",
            "Time from the request's arrival to its answer",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.job_seconds = Histogram(
            "emocontext_job_duration_seconds",
            "Time a job spent in a worker",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.failures = Counter("emocontext_failures", "Refused requests and failed jobs", ["kind"], registry=r)
        self.queue_depth = Gauge("emocontext_queue_depth", "Accepted jobs waiting for a worker", registry=r)
        self.running = Gauge("emocontext_jobs_running", "Jobs running in a worker", registry=r)
        self.slots = Gauge("emocontext_slots_in_use", "Uploads and jobs counted against workers + queue", registry=r)
        self.workers_ready = Gauge("emocontext_workers_ready", "Worker processes with their models loaded", registry=r)

    def bind(
        self,
        *,
        queue_depth: Callable[[], float],
        running: Callable[[], float],
        slots: Callable[[], float],
        workers_ready: Callable[[], float],
    ) -> None:
        self.queue_depth.set_function(queue_depth)
        self.running.set_function(running)
        self.slots.set_function(slots)
        self.workers_ready.set_function(workers_ready)

    def failure(self, kind: str) -> None:
        self.failures.labels(kind=kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts every HTTP request by route template and status, times it."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(method=scope["method"], route=name, status=str(status["code"])).inc()
            self.metrics.latency.labels(route=name).observe(time.perf_counter() - t0)
