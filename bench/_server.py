"""The real command center on a free loopback port, in a background thread (as the e2e tests run it)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    ws_url: str
    embedded: Any
    server: Any
    thread: threading.Thread
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def console_url(self, center: str) -> str:
        return f"{self.ws_url}/ws/console?center={center}&token={self.token}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.embedded.close()


def start_server(data_dir: Path) -> RunningServer:
    """Start the embedded command center; returns once it accepts requests."""
    import uvicorn

    from infra.bootstrap import build_embedded
    from infra.settings import Settings

    port = free_port()
    settings = Settings().with_(data_dir=data_dir, host="127.0.0.1", port=port, resume_wait=0.3,
                                ws_allow_missing_origin=True)
    embedded = build_embedded(settings)
    config = uvicorn.Config(embedded.app(), host="127.0.0.1", port=port, log_level="warning",
                            ws="websockets-sansio", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    token = embedded.tokens.issue("bench-officer", "city_officer", embedded.jurisdiction.root.id)
    return RunningServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", embedded, server,
                         thread, token, {"Authorization": f"Bearer {token}"})
