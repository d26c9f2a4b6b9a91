"""Prometheus metrics, kept in a registry per app (no process-wide state)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

# Label values are series: a made-up method must not make a new one.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """Request counts and latencies, forward-pass batch sizes and the batcher's queue depth."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "omniembed_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "omniembed_request_latency_seconds", "HTTP request latency", ["route"], registry=self.registry
        )
        self.batch_inputs = Histogram(
            "omniembed_batch_inputs",
            "inputs per merged forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "omniembed_batch_requests",
            "requests merged into one forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.forward_seconds = Histogram(
            "omniembed_forward_seconds", "time of one merged forward pass", registry=self.registry
        )
        self.queue_depth = Gauge(
            "omniembed_queue_depth", "embedding requests waiting for the model", registry=self.registry
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Count and time every request by its route template (not its raw path)."""
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            name = getattr(route, "path", "unmatched")
            method = request.method if request.method in _METHODS else "other"
            self.requests.labels(method, name, str(status)).inc()
            self.latency.labels(name).observe(time.perf_counter() - start)
