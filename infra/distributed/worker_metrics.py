"""`/metrics` of `linkage worker` (LINKAGE_WORKER_METRICS_PORT): the worker's consumer lag (records
in its assigned partitions it has not read yet), its partitions and the events it processed,
read from faust and from the events consumer (streams/router.py: the events topic is read
outside faust) when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

IGNORED_SUFFIXES = ("-changelog", "__assignor-__leader")


class WorkerCollector(Collector):
    def __init__(self, app: Any) -> None:
        self.app = app

    def lag(self) -> tuple[int, int]:
        """(records not yet read in the partitions the agents and the router consume, those
        partitions): the table changelogs (read only to recover) and faust's leader topic are
        not counted."""
        consumer = self.app.consumer
        assigned = {tp for tp in consumer.assignment()
                    if not tp.topic.endswith(IGNORED_SUFFIXES)}
        behind = 0
        for tp in assigned:
            end = consumer.highwater(tp)
            read = consumer._read_offset.get(tp)  # faust keeps no public accessor for it
            if end is not None:
                behind += max(0, int(end) - (int(read) + 1 if read is not None else 0))
        router = getattr(self.app, "event_router", None)
        routing_behind, routing = router.lag() if router is not None else (0, 0)
        return behind + routing_behind, len(assigned) + routing

    def collect(self) -> Iterator[Metric]:
        try:
            behind, assigned = self.lag()
        except Exception:  # not started, or rebalancing: nothing to say yet
            behind = assigned = -1
        if assigned >= 0:
            yield GaugeMetricFamily("linkage_worker_consumer_lag",
                                    "Records in this worker's partitions it has not read yet",
                                    value=behind)
            yield GaugeMetricFamily("linkage_worker_partitions",
                                    "Partitions this worker's agents consume", value=assigned)
        monitor = self.app.monitor
        router = getattr(self.app, "event_router", None)
        routed = router.received if router is not None else 0
        yield CounterMetricFamily("linkage_worker_events",
                                  "Events this worker's agents and router took",
                                  value=monitor.events_total + routed)
        yield CounterMetricFamily("linkage_worker_messages_received",
                                  "Records this worker received from Kafka",
                                  value=monitor.messages_received_total + routed)


def serve_worker_metrics(app: Any, port: int, host: str = "127.0.0.1") -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(WorkerCollector(app))
    start_http_server(port, addr=host, registry=registry)
    return registry
