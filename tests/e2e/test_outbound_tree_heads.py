"""Issue #18: signed tree heads published by the outbound webhooks (`tree_head_signed`), on
SQLite and PostgreSQL. A witness on another machine is down while heads are signed and while
the server restarts; once up, it receives every head signed since the subscription's first scan,
once per idempotency key, in tree order, each body the head's witness line, and the standalone
verifier checks a consistency proof between two received heads."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest

from infra.outbound.deliverer import HEADS_SCAN
from infra.outbound.wiring import SealedHeads, outbound_store
from infra.settings import Settings
from tests.conftest import start_server
from tests.e2e.receiver import Receiver
from tests.e2e.test_audit_proofs_http import TOOL, verified
from tests.e2e.test_outbound import (  # noqa: F401 (receivers: a fixture)
    FAST,
    SECRET,
    act,
    linkage,
    new_receiver,
    receivers,
    report,
    subscriptions_file,
)

pytestmark = pytest.mark.e2e


def wait(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_witness_down_across_a_restart_gets_every_signed_tree_head_once(
        tmp_path: Path, receivers: list[Receiver], store: str,  # noqa: F811
        request: pytest.FixtureRequest) -> None:
    extra: dict[str, Any] = {}
    if store == "postgres":
        extra = {"store": "postgres", "postgres_dsn": request.getfixturevalue("postgres_dsn"),
                 "postgres_schema": request.getfixturevalue("pg_schema")}
    witness = new_receiver(receivers, start=False)  # down: connections are refused
    config = {**FAST, **extra, "seal_checkpoint_every": 2, "seal_interval": 0.05,
              "outbound_file": subscriptions_file(tmp_path, {
                  "name": "witness", "url": witness.url, "events": ["tree_head_signed"]})}
    data = tmp_path / "data"
    settings = Settings().with_(data_dir=data, **{k: v for k, v in config.items()
                                                  if k != "outbound_file"})
    outbound = outbound_store(settings)
    heads = SealedHeads(settings)
    server = start_server(data, **config)
    try:
        # The first scan of heads starts at the latest head: what is signed after it is sent.
        wait(lambda: outbound.position(HEADS_SCAN) is not None, "no first scan of the heads")
        start = outbound.position(HEADS_SCAN)
        assert start is not None
        for _ in range(3):
            act(server, report(server, severity="routine"), "accept")
        # Heads every two events: at least three after the first scan, and one over them all.
        last = server.embedded.service.recorder.max_notification_id()
        wait(lambda: any(h.notification_id >= last for h in heads.after(start, 1000)),
             "no head of the last event")
        wait(lambda: outbound.position(HEADS_SCAN) == heads.latest(),
             "the heads were not all scanned")
    finally:
        server.stop()
    signed = heads.after(start, 1000)
    heads.close()
    if store == "sqlite":  # (the CLI's PostgreSQL settings come from the environment)
        status = linkage("outbound", "status", data_dir=data).stdout
        assert f"signed tree heads scanned up to tree size {signed[-1].tree_size}" in status
        assert f"witness: pending={len(signed)} delivered=0 dead=0" in status, status
    assert len(signed) >= 3
    witness.start()
    server = start_server(data, **config)
    try:
        witness.wait_for(lambda got: {m.headers["Idempotency-Key"] for m in got} >=
                         {f"witness:{head.tree_size}" for head in signed})
        embedded: Any = server.embedded
        auditor = {"Authorization": f"Bearer {embedded.tokens.issue('aud', 'auditor', None)}"}
        first, last = signed[0], signed[-1]
        proof = httpx.get(f"{server.url}/api/audit/proofs/consistency", headers=auditor,
                          params={"from": first.tree_size, "to": last.tree_size}, timeout=10)
        assert proof.status_code == 200, proof.text
    finally:
        server.stop()

    messages = witness.messages()
    keys = [m.headers["Idempotency-Key"] for m in messages]
    assert len(keys) == len(set(keys))  # exactly once per key
    assert [int(k.split(":")[1]) for k in keys] == sorted(h.tree_size for h in signed)
    by_key = {m.headers["Idempotency-Key"]: m for m in messages}
    for head in signed:
        message = by_key[f"witness:{head.tree_size}"]
        assert message.headers["Content-Type"] == "application/json"
        assert message.headers["X-Linkage-Signature"] == "sha256=" + hmac.new(
            SECRET.encode(), message.body, hashlib.sha256).hexdigest()
        # The witness line's format (docs/AUDIT-FORMAT.md), as the witness file holds it.
        assert message.body == msgspec.json.encode(head)

    # The receiver checks what it was sent: a consistency proof between its first and its last
    # head, with those heads as it received them, passes the standalone verifier.
    doc = proof.json()
    doc["first_head"] = orjson.loads(by_key[f"witness:{first.tree_size}"].body)
    doc["second_head"] = orjson.loads(by_key[f"witness:{last.tree_size}"].body)
    assert "consistency verified" in verified(tmp_path, doc)
    forged = {**doc, "second_head": {**doc["second_head"], "root": "00" * 32}}
    path = tmp_path / "forged.json"
    path.write_bytes(orjson.dumps(forged))
    result = subprocess.run([sys.executable, str(TOOL), "proof", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result


def test_the_heads_reader_keeps_one_postgres_connection_and_replaces_a_broken_one(
        postgres_dsn: str, pg_schema: str) -> None:
    """The deliverer polls the heads twice a second while a witness subscribes: one kept
    read-only connection, not one per poll; a connection the server dropped fails that poll
    (the deliverer logs it and retries) and the next poll opens a new one."""
    import psycopg

    settings = Settings().with_(store="postgres", postgres_dsn=postgres_dsn,
                                postgres_schema=pg_schema)
    heads = SealedHeads(settings)
    try:
        assert heads.latest() == 0 and heads.after(0, 10) == []  # nothing sealed: no tables
        pid = heads._pg.info.backend_pid
        for _ in range(5):
            heads.latest()
        assert heads._pg.info.backend_pid == pid
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            heads.latest()
        assert heads._pg is None
        assert heads.latest() == 0
        assert heads._pg.info.backend_pid != pid
        assert heads._pg.read_only is True
    finally:
        heads.close()
