"""Start-up checks: each service answers within a few seconds, or we say which one did not.

A process that starts against an unreachable PostgreSQL, Kafka or Redis must exit
non-zero naming the service and its address, never hang.
"""

from __future__ import annotations

import asyncio
import contextlib

from infra.settings import Settings


class ServiceUnreachable(RuntimeError):
    """A service the process needs did not answer at start."""

    def __init__(self, service: str, address: str, reason: object) -> None:
        super().__init__(
            f"{service} at {address} is unreachable: {str(reason).strip().rstrip('.')}. "
            f"Check that {service} runs there, or point the setting at the right address."
        )
        self.service = service
        self.address = address


def _postgres_address(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def check_postgres(dsn: str, timeout: float) -> None:
    import psycopg

    address = f"{_postgres_address(dsn)} (LINKAGE_POSTGRES_DSN)"
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, round(timeout))) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        raise ServiceUnreachable("PostgreSQL", address, str(exc).strip() or type(exc).__name__) from None


async def check_kafka_async(bootstrap: str, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    address = f"{bootstrap} (LINKAGE_KAFKA_BOOTSTRAP)"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
    except TimeoutError:
        raise ServiceUnreachable("Kafka", address, f"no answer within {timeout:g}s") from None
    except Exception as exc:
        raise ServiceUnreachable("Kafka", address, str(exc) or type(exc).__name__) from None
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await asyncio.wait_for(admin.close(), timeout)


def check_kafka(bootstrap: str, timeout: float) -> None:
    asyncio.run(check_kafka_async(bootstrap, timeout))


def check_redis(url: str, timeout: float) -> None:
    import redis

    address = f"{url} (LINKAGE_REDIS_URL)"
    # A Redis Cluster URL (infra/distributed/redis_client.py): ping the node it names.
    node = url.replace("redis+cluster://", "redis://", 1)
    client = redis.Redis.from_url(node, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except Exception as exc:
        raise ServiceUnreachable("Redis", address, str(exc) or type(exc).__name__) from None
    finally:
        client.close()


def check(settings: Settings, *services: str) -> None:
    """Check the named services ('postgres', 'kafka', 'redis') in that order."""
    timeout = settings.connect_timeout
    for service in services:
        if service == "postgres":
            check_postgres(settings.postgres_dsn, timeout)
        elif service == "kafka":
            check_kafka(settings.kafka_bootstrap, timeout)
        elif service == "redis":
            check_redis(settings.redis_url, timeout)
        else:
            raise ValueError(f"unknown service {service!r}; expected postgres, kafka or redis")
