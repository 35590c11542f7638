"""``--metrics HOST:PORT``: the server's counts in Prometheus' text format at
``/metrics`` and its health at ``/healthz``, from a small HTTP endpoint on the server's
own event loop (a scrape reads the plain counters of :mod:`.stats`; serving pays
nothing for it).

prometheus_client is imported here alone, and this module only with ``--metrics``:
a server without it never loads the library.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .. import protocol as p
from ..framing import OversizedLine
from .stats import LOGGED_IN, REFUSAL_REASONS, Histogram, ServerStats

LOGIN_OUTCOMES = {LOGGED_IN: "ok", p.IN_USE: "in_use", p.BUSY: "busy",
                  p.BAD_RQST_BODY: "bad_name", p.BAD_RQST_HDR: "bad_header"}
REQUEST_KINDS: dict[type, str] = {
    p.ListRequest: "list", p.MalformedBody: "bad_body",
    p.MalformedHeader: "bad_header", p.HelloFrom: "hello_again", OversizedLine: "too_long"}
MAX_HEAD = 8 * 1024
"""Bytes of an HTTP request's head the endpoint reads at most."""
REQUEST_TIMEOUT = 5.0
"""Seconds a client of the endpoint has to send its request and read the answer."""
MAX_CONNECTIONS = 16
"""Connections slower than :data:`QUICK` to send their request, at once; one more closes
the oldest of them. A scrape or a health check sends its request at once and never takes
a place, so slow clients, however many and however often they come back, only push each
other out."""
QUICK = 0.05
"""Seconds a client has to send its whole request before it counts as slow."""


class ClusterView(Protocol):
    """What a node of a cluster tells the metrics."""

    latencies: Histogram

    def reach(self) -> tuple[int, int, float]:
        """Groups reached, groups in all, and seconds since the oldest lease renewal."""


@dataclass
class Sources:
    """Where the counts come from."""

    stats: ServerStats
    users_online: Callable[[], int]
    waiting: Callable[[], int]
    health: Callable[[], str | None]
    """None while serving, else why the node should get no traffic now."""
    cluster: ClusterView | None = None


class ServerCollector(Collector):
    """The server's counts as metric families, read at each scrape."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        s, stats = self.sources, self.sources.stats
        yield GaugeMetricFamily("chatsh_users_online", "Users logged in here, echobot not "
                                "counted", value=s.users_online())
        yield GaugeMetricFamily("chatsh_connections_waiting_login", "Connections that have "
                                "not logged in yet", value=s.waiting())
        yield _labelled("chatsh_logins", "Login attempts by outcome", "outcome",
                        {label: stats.logins[reply] for reply, label in LOGIN_OUTCOMES.items()})
        yield _labelled("chatsh_requests", "Requests of logged-in users by kind", "kind",
                        {"send": stats.sends, **{label: stats.requests[kind]
                                                 for kind, label in REQUEST_KINDS.items()}})
        yield CounterMetricFamily("chatsh_deliveries", "Messages handed on to their "
                                  "recipients, here or on another node (each SEND-OK)",
                                  value=stats.sends - stats.undelivered)
        yield CounterMetricFamily("chatsh_received_bytes", "Bytes read from clients",
                                  value=stats.bytes_in)
        yield CounterMetricFamily("chatsh_sent_bytes", "Bytes written to clients",
                                  value=stats.bytes_out)
        yield CounterMetricFamily("chatsh_slow_readers_dropped", "Connections dropped for "
                                  "not reading what was sent to them", value=stats.slow_readers)
        yield _labelled("chatsh_refusals", "Connections closed before a login, by reason",
                        "reason", {reason: stats.refusals[reason] for reason in REFUSAL_REASONS})
        if s.cluster is not None:
            yield from _cluster(s.cluster)


def _labelled(name: str, text: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, text, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def _cluster(cluster: ClusterView) -> Iterator[Metric]:
    reached, groups, lease_age = cluster.reach()
    yield GaugeMetricFamily("chatsh_cluster_groups_reached", "Groups of the cluster's "
                            "state this node reaches now", value=reached)
    yield GaugeMetricFamily("chatsh_cluster_groups", "Groups of the cluster's state",
                            value=groups)
    yield GaugeMetricFamily("chatsh_cluster_lease_age_seconds", "Seconds since this "
                            "node's oldest lease renewal", value=lease_age)
    latencies = cluster.latencies
    buckets, running = [], 0
    for bound, count in zip((*latencies.bounds, float("inf")), latencies.counts, strict=True):
        running += count
        buckets.append((_bound(bound), float(running)))
    yield HistogramMetricFamily("chatsh_cluster_engine_call_seconds", "Seconds a pipeline "
                                "of calls to the cluster engine took", buckets=buckets,
                                sum_value=latencies.total)


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def registry(sources: Sources) -> CollectorRegistry:
    """The server's metrics and the process's own (CPU, memory, descriptors)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(ServerCollector(sources))
    ProcessCollector(registry=found)
    return found


class MetricsEndpoint:
    """``GET /metrics`` and ``GET /healthz`` over HTTP, one request per connection."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.registry = registry(sources)
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.WriteTransport, None] = {}
        """The connections being served, the oldest first."""

    async def start(self, host: str, port: int) -> int:
        """Listen; the port (a free one for 0)."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        head = asyncio.ensure_future(_request_line(reader))
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if not (await asyncio.wait({head}, timeout=QUICK))[0]:
                    self._hold_place(transport)
                request_line = await head
                writer.write(self._answer(request_line.split(b" ")))
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError):  # (ValueError: a line past the limit)
            transport.abort()
        finally:
            head.cancel()
            self._open.pop(transport, None)
            writer.close()

    def _hold_place(self, transport: asyncio.WriteTransport) -> None:
        """A slow client takes a place; with none left, the oldest loses its own."""
        if len(self._open) >= MAX_CONNECTIONS:
            oldest = next(iter(self._open))
            del self._open[oldest]
            oldest.abort()
        self._open[transport] = None

    def _answer(self, request_line: list[bytes]) -> bytes:
        if len(request_line) != 3 or request_line[0] not in (b"GET", b"HEAD"):
            return _response(405, b"GET /metrics or GET /healthz\n")
        path = request_line[1].split(b"?", 1)[0]
        if path == b"/metrics":
            body = generate_latest(self.registry)
            return _response(200, body, CONTENT_TYPE_LATEST, request_line[0] == b"HEAD")
        if path == b"/healthz":
            trouble = self.sources.health()
            return _response(503 if trouble else 200, f"{trouble or 'ok'}\n".encode(),
                             head_only=request_line[0] == b"HEAD")
        return _response(404, b"not found: /metrics or /healthz\n")


async def _request_line(reader: asyncio.StreamReader) -> bytes:
    """The first line of a request's head, once the head has ended: with an empty line,
    each line ending in CRLF or in LF alone (which RFC 9112 lets a server take), the whole
    head within :data:`MAX_HEAD` bytes."""
    first = line = await reader.readline()
    size = len(first)
    while line not in (b"\r\n", b"\n"):
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        line = await reader.readline()
        size += len(line)
        if size > MAX_HEAD:
            raise asyncio.LimitOverrunError("the request's head is too long", size)
    return first.rstrip(b"\r\n")


STATUS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def _response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
              head_only: bool = False) -> bytes:
    head = (f"HTTP/1.1 {status} {STATUS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head if head_only else head + body
