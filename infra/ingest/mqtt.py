"""MQTT subscriber for Frigate NVR events (topic `frigate/events`, QoS 1).

Messages are decoded, grouped into small batches and stored with group commit; each
message is acknowledged to the broker (PUBACK) only after its batch is committed, so a
crash before the commit means redelivery, and redelivery is harmless (idempotent ids).
A payload that cannot be decoded, goes past a limit of domain/ingest_limits.py (the same as on
every ingest path) or names an unknown camera, is logged and counted on
the dead-letter counter (GET /api/ingest/stats), then acknowledged: it would never succeed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from urllib.parse import urlparse

import aiomqtt

from command_center.feed_formats import FeedError, decode_frigate
from command_center.ingest import store
from command_center.types import Services
from domain.camera_alert import Observation
from domain.incident import Actor
from infra.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
LINGER = 0.02  # seconds to wait for more messages to join a batch


class MqttIngest:
    def __init__(self, settings: Settings, services: Services, *, reconnect_delay: float = 1.0):
        url = urlparse(settings.mqtt_url)
        if url.scheme not in ("mqtt", "tcp", ""):
            raise ValueError(f"LINKAGE_MQTT_URL must be mqtt://host:port; got {settings.mqtt_url!r}")
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 1883
        self.username = url.username
        self.password = url.password
        self.topic = settings.mqtt_topic
        self.services = services
        self.actor: Actor = {"user": settings.mqtt_feed, "role": "feed", "center": None}
        self.reconnect_delay = reconnect_delay
        # A stable client id with a persistent session: QoS 1 messages wait for us at the broker.
        self.client_id = f"linkage-{settings.mqtt_feed}-{uuid.uuid5(uuid.NAMESPACE_URL, str(settings.data_dir.resolve())).hex[:12]}"
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                log.warning("MQTT %s:%s: %s; reconnecting in %.0fs", self.host, self.port, exc,
                            self.reconnect_delay)
            except Exception:  # the store failed: unacked messages come back after reconnecting
                log.exception("MQTT ingest failed; reconnecting")
            self.subscribed.clear()
            await asyncio.sleep(self.reconnect_delay)

    async def _session(self) -> None:
        async with aiomqtt.Client(self.host, self.port, username=self.username,
                                  password=self.password, identifier=self.client_id,
                                  clean_session=False) as client:
            paho = client._client  # aiomqtt has no manual-ack API; paho's is public
            paho.manual_ack_set(True)
            await client.subscribe(self.topic, qos=1)
            self.subscribed.set()
            self.services.intake.stats.add("mqtt.subscribed")
            log.info("subscribed to MQTT %s:%s topic %s", self.host, self.port, self.topic)
            messages = client.messages
            pending: list[aiomqtt.Message] = []
            while True:
                pending.append(await anext(messages))
                # Let more join, then take only what is queued: cancelling a waiting anext()
                # (a timeout) can drop the message aiomqtt has just dequeued for it, unacked.
                await asyncio.sleep(LINGER)
                while len(pending) < BATCH and len(messages):
                    pending.append(await anext(messages))
                await self._handle(pending)
                for message in pending:
                    if message.qos > 0:
                        paho.ack(message.mid, message.qos)
                pending = []

    async def _handle(self, messages: list[aiomqtt.Message]) -> None:
        svc = self.services
        svc.intake.stats.add("mqtt.received", len(messages))
        payloads = [m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
                    for m in messages]
        # Decoded in a thread: a batch of up to BATCH messages, each as large as the broker lets it.
        observations, dead = await asyncio.to_thread(self._decode, payloads)
        for reason, payload in dead:
            self._dead(reason, payload)
        if not observations:
            return
        # Store; if the store itself fails (not the payload), do not ack: let the broker redeliver.
        await asyncio.to_thread(store, svc, self.actor, observations, "mqtt")

    def _decode(self, payloads: list[bytes]) -> tuple[list[Observation], list[tuple[str, bytes]]]:
        """The observations of the payloads that can be stored, and (reason, payload) of the
        others: past a limit of domain/ingest_limits.py, or naming an unknown camera."""
        observations: list[Observation] = []
        dead: list[tuple[str, bytes]] = []
        alerts = self.services.alerts
        for payload in payloads:
            try:
                obs = decode_frigate(payload)
                if alerts is not None:
                    alerts.locate(obs)  # an unknown camera: a dead letter
            except FeedError as exc:
                dead.append((exc.detail, payload))
                continue
            except Exception as exc:  # UnknownCamera/UnknownArea, or anything a payload caused
                dead.append((str(exc), payload))
                continue
            observations.append(obs)
        return observations, dead

    def _dead(self, reason: str, payload: bytes) -> None:
        log.warning("MQTT dead letter on %s: %s", self.topic, reason)
        self.services.intake.stats.dead_letter("mqtt", reason, payload)
