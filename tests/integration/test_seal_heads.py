"""Issue #18, parts 1 and 3: the last event is covered by a signed tree head within
LINKAGE_SEAL_CHECKPOINT_SECONDS after the system goes idle (an injected clock, no timing
assertion); heads go to an HTTP witness; the server warns when the seal key lies inside the
data dir."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest

from infra.security.merkle_store import TreeReader
from infra.security.sealer import build_sealer, new_signing_key, warn_key_inside_data_dir
from infra.security.tree_head import TreeHead
from infra.security.witness import Head
from infra.settings import Settings
from tests.integration.sealed_store import make_history, settings_for


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return settings_for(request, tmp_path).with_(seal_checkpoint_every=100)


def test_the_last_event_is_signed_within_the_checkpoint_time_after_going_idle(
    settings: Settings,
) -> None:
    service = make_history(settings)  # 9 events: fewer than one checkpoint's worth
    sealer = build_sealer(settings, service.recorder)
    now = [0.0]
    covered_at: list[float] = []

    def monotonic() -> float:
        return now[0]

    def stopped() -> bool:  # each loop is one second of the injected clock
        with sealer.db.tx() as tx:
            head = TreeReader(tx.execute).head()
        if head is not None and head.tree_size == 9 and not covered_at:
            covered_at.append(now[0])
        now[0] += 1.0
        return bool(covered_at) or now[0] > 100

    asyncio.run(sealer.run(interval=0, stopped=stopped, checkpoint_seconds=5,
                           monotonic=monotonic))
    service.close()
    assert covered_at, "no signed tree head covered the last event"
    assert covered_at[0] <= 5 + 1  # sealed at t=0, signed at the first check after 5 s
    with sealer.db.tx() as tx:
        head = TreeReader(tx.execute).head()
    assert head is not None and (head.tree_size, head.notification_id) == (9, 9)
    assert sealer.checkpoint_now() is None  # nothing new: no second head of the same tree
    with sealer.db.tx() as tx:
        assert [h.tree_size for h in TreeReader(tx.execute).heads()] == [9]


class Collector(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []
    status = 204

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def witness_url() -> Iterator[str]:
    Collector.bodies = []
    Collector.status = 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/heads"
    server.shutdown()
    server.server_close()


def test_signed_heads_are_posted_to_an_http_witness(tmp_path: Path, witness_url: str) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4,
                                seal_witness=witness_url)
    service = make_history(settings)
    sealer = build_sealer(settings, service.recorder)
    assert sealer.catch_up() == 9
    service.close()
    lines = b"".join(Collector.bodies).splitlines()
    assert len(lines) == 4  # a checkpoint head and a tree head at 4 and at 8
    trees = [msgspec.json.decode(line, type=TreeHead) for line in lines[1::2]]
    assert [msgspec.json.decode(line, type=Head).checkpoint for line in lines[0::2]] == [1, 2]
    with sealer.db.tx() as tx:
        assert trees == TreeReader(tx.execute).heads()


def test_a_failing_http_witness_is_logged_and_sealing_goes_on(
    tmp_path: Path, witness_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    Collector.status = 500
    settings = Settings().with_(data_dir=tmp_path / "data", seal_checkpoint_every=4,
                                seal_witness=witness_url)
    service = make_history(settings)
    sealer = build_sealer(settings, service.recorder)
    with caplog.at_level(logging.ERROR):
        assert sealer.catch_up() == 9
    service.close()
    assert f"witness {witness_url} answered 500" in caplog.text
    assert sealer.position() == 9


def test_the_server_warns_when_the_seal_key_lies_inside_the_data_dir(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inside = Settings().with_(data_dir=tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        assert warn_key_inside_data_dir(inside)
    assert "the seal signing key" in caplog.text and "lies inside the data dir" in caplog.text
    caplog.clear()
    elsewhere = tmp_path / "keys" / "seal.pem"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(new_signing_key())
    with caplog.at_level(logging.WARNING):
        assert not warn_key_inside_data_dir(inside.with_(seal_key_path=str(elsewhere)))
    assert caplog.text == ""


def test_a_store_sealed_before_the_tree_gets_its_tree_and_heads(settings: Settings) -> None:
    """Upgrading: a chain sealed by the sealer before #18 (no tree); the new sealer first adds
    the sealed events as leaves, then seals on and signs heads over the whole log."""
    from infra.security import merkle
    from infra.security.seal_format import canonical
    from infra.security.sealer import Sealer, load_signing_key, stored_reader
    from infra.store.sqldb import Database

    service = make_history(settings)  # 9 events
    old = Sealer(stored_reader(service.recorder), Database.for_settings(
        settings, settings.sqlite_path), load_signing_key(settings), checkpoint_every=4,
        merkle=False)
    assert old.catch_up() == 9
    service.close()
    service = make_history(settings, incidents=1)  # 10..12
    sealer = build_sealer(settings, service.recorder)
    assert sealer.catch_up() == 9 + 3  # 9 leaves added, then 3 events sealed
    sealer.checkpoint_now()
    events = list(sealer.events(12))
    service.close()
    frontier: list[bytes] = []
    for i, event in enumerate(events):
        merkle.append(frontier, i, merkle.leaf_hash(canonical(event)))
    with sealer.db.tx() as tx:
        head = TreeReader(tx.execute).head()
    assert head is not None and head.tree_size == 12
    assert head.root == merkle.root(frontier).hex()
