"""faust's aiokafka transport with a configurable fetch wait.

faust 0.15 creates its worker consumer with `fetch_max_wait_ms=1500`. Apache Kafka answers a
fetch as soon as data arrives, so that only bounds idle polling; Tansu 0.6 holds every fetch
for the full wait, which put ~0.45 s on each hop. The wait is a setting here instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
from faust.transport.drivers import aiokafka as driver


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    fetch_max_wait_ms: ClassVar[int] = 1500

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher.
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


def transport_class(fetch_max_wait_ms: int) -> type[driver.Transport]:
    """An aiokafka transport whose worker consumer waits at most `fetch_max_wait_ms` per fetch."""
    thread = type("ConsumerThread", (_ConsumerThread,), {"fetch_max_wait_ms": fetch_max_wait_ms})

    class Consumer(driver.Consumer):
        def _new_consumer_thread(self) -> Any:
            return thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(driver.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport
