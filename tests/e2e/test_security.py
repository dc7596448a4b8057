"""Identity at the edge, over real HTTP and websockets: token attacks, Origin, frame size,
message rate, token expiry, feed keys, and the audit trail of auditors and admins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from starlette.requests import Request
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from command_center.problems import Problem
from tests.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the production websocket defaults and an identity provider's keys."""
    base = tmp_path_factory.mktemp("secure")
    rsa_pem, ed_pem = base / "rs256.pem", base / "eddsa.pem"
    rsa_pem.write_bytes(_pem(RSA_KEY))
    ed_pem.write_bytes(_pem(ED_KEY))
    running = start_server(base / "data", jwt_algorithms=("HS256", "RS256", "EdDSA"),
                           jwt_rs256_public_key=str(rsa_pem), jwt_eddsa_public_key=str(ed_pem),
                           ws_allow_missing_origin=False, ws_rate=5.0, ws_burst=5)
    yield running
    running.stop()


def root(server: RunningServer) -> str:
    return server.embedded.jurisdiction.root.id  # type: ignore[attr-defined,no-any-return]


def claims(server: RunningServer, **changes: Any) -> dict[str, Any]:
    base = {"sub": "officer-1", "role": "city_officer", "center": root(server),
            "aud": "linkage", "iss": "linkage-local", "exp": int(time.time()) + 60}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def secret(server: RunningServer) -> str:
    return server.embedded.tokens.secret  # type: ignore[attr-defined,no-any-return]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, the way an attacker would (no library refusing to help)."""
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b"" if key is None else hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(signature)}"


def flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1:]}"


def swap_payload(token: str, payload: dict[str, Any]) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{_b64(json.dumps(payload).encode())}.{signature}"


ATTACKS = {
    "alg none": lambda s: handmade({"alg": "none", "typ": "JWT"}, claims(s), None),
    "alg None with signature stripped": lambda s: handmade({"alg": "None"}, claims(s), None),
    "HS256 signed with the RS256 public key (key confusion)":
        lambda s: handmade({"alg": "HS256", "typ": "JWT"}, claims(s), _pem(RSA_KEY)),
    "HS256 signed with the EdDSA public key": lambda s: handmade({"alg": "HS256"}, claims(s),
                                                                  _pem(ED_KEY)),
    "HS512, not pinned": lambda s: jwt.encode(claims(s), secret(s), algorithm="HS512"),
    "expired": lambda s: jwt.encode(claims(s, exp=int(time.time()) - 5), secret(s), "HS256"),
    "wrong audience": lambda s: jwt.encode(claims(s, aud="other-app"), secret(s), "HS256"),
    "wrong issuer": lambda s: jwt.encode(claims(s, iss="evil-idp"), secret(s), "HS256"),
    "no exp": lambda s: jwt.encode(claims(s, exp=None), secret(s), "HS256"),
    "no aud": lambda s: jwt.encode(claims(s, aud=None), secret(s), "HS256"),
    "no iss": lambda s: jwt.encode(claims(s, iss=None), secret(s), "HS256"),
    "tampered signature": lambda s: flip_signature(jwt.encode(claims(s), secret(s), "HS256")),
    "payload swapped to admin": lambda s: swap_payload(
        jwt.encode(claims(s), secret(s), "HS256"), claims(s, role="admin")),
    "RS256 signed by another key": lambda s: jwt.encode(
        claims(s), rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    "unknown role": lambda s: jwt.encode(claims(s, role="superuser"), secret(s), "HS256"),
    "garbage": lambda s: "not-a-jwt",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_forged_or_invalid_tokens_are_refused_with_401(secure: RunningServer, attack: str) -> None:
    token = ATTACKS[attack](secure)
    response = httpx.get(f"{secure.url}/api/centers/{root(secure)}/view",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_request_without_credentials_is_refused_with_401(secure: RunningServer) -> None:
    response = httpx.post(f"{secure.url}/api/incidents", json={})
    assert response.status_code == 401
    assert "missing credentials" in response.json()["detail"]


@pytest.mark.parametrize("alg", ["HS256", "RS256", "EdDSA"])
def test_tokens_of_every_pinned_algorithm_are_accepted(secure: RunningServer, alg: str) -> None:
    key = {"HS256": secret(secure), "RS256": RSA_KEY, "EdDSA": ED_KEY}[alg]
    token = jwt.encode(claims(secure), key, algorithm=alg)
    response = httpx.get(f"{secure.url}/api/centers/{root(secure)}/view",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


# -- websockets ---------------------------------------------------------------------------


def refused_status(url: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info, connect(url, open_timeout=5, **kwargs):
        pass
    return info.value.response.status_code


def test_websocket_without_a_valid_token_is_refused_before_accept(secure: RunningServer) -> None:
    url = f"{secure.ws_url}/ws/console?center={root(secure)}"
    assert refused_status(url, origin=secure.url) == 403
    assert refused_status(f"{url}&token=not-a-jwt", origin=secure.url) == 403
    expired = jwt.encode(claims(secure, exp=int(time.time()) - 5), secret(secure), "HS256")
    assert refused_status(f"{url}&token={expired}", origin=secure.url) == 403
    forged = ATTACKS["alg none"](secure)
    assert refused_status(f"{url}&token={forged}", origin=secure.url) == 403


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://127.0.0.1:1"])
def test_websocket_with_a_foreign_or_missing_origin_is_refused(secure: RunningServer,
                                                               origin: str | None) -> None:
    url = secure.console_url(root(secure))
    assert refused_status(url, origin=origin) == 403


def test_websocket_with_own_origin_and_token_gets_a_snapshot(secure: RunningServer) -> None:
    with connect(secure.console_url(root(secure)), origin=secure.url, open_timeout=5) as ws:
        first = json.loads(ws.recv(timeout=5))
    assert first["type"] == "snapshot" and first["center"] == root(secure)


def test_websocket_token_may_come_as_a_bearer_subprotocol(secure: RunningServer) -> None:
    url = f"{secure.ws_url}/ws/console?center={root(secure)}"
    with connect(url, origin=secure.url, subprotocols=["bearer", secure.token],  # type: ignore[list-item]
                 open_timeout=5) as ws:
        assert ws.subprotocol == "bearer"
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


def test_a_frame_over_64_kib_closes_the_socket_with_1009(secure: RunningServer) -> None:
    with connect(secure.console_url(root(secure)), origin=secure.url, open_timeout=5,
                 max_size=None) as ws:
        ws.recv(timeout=5)
        ws.send("x" * (65536 + 1024))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


def test_too_many_messages_close_the_socket_with_1008(secure: RunningServer) -> None:
    with connect(secure.console_url(root(secure)), origin=secure.url, open_timeout=5) as ws:
        ws.recv(timeout=5)
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(50):
                ws.send('{"type":"ping"}')
            while True:
                ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert "rate" in info.value.rcvd.reason


def test_the_socket_closes_when_its_token_expires(secure: RunningServer) -> None:
    token = secure.embedded.tokens.issue("short", "city_officer", root(secure), ttl=2)  # type: ignore[attr-defined]
    with connect(secure.console_url(root(secure), token), origin=secure.url,
                 open_timeout=5) as ws:
        ws.recv(timeout=5)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=6)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4401
    assert time.monotonic() - started < 5


# -- feed keys ----------------------------------------------------------------------------


def _grid(server: RunningServer) -> str:
    return server.embedded.jurisdiction.grids()[0].id  # type: ignore[attr-defined,no-any-return]


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw,
                    "query_string": b""})


def test_a_feed_key_reports_but_reads_nothing_and_stops_working_when_revoked(
    server: RunningServer,
) -> None:
    keys = server.embedded.keys  # type: ignore[attr-defined]
    key_id, key = keys.issue("camera-gate-3")
    report = {"source": "camera", "category": "intrusion", "grid": _grid(server),
              "description": "person climbing the fence"}
    created = httpx.post(f"{server.url}/api/incidents", json=report, headers={"X-API-Key": key})
    assert created.status_code == 201, created.text
    assert created.json()["id"]
    timeline = httpx.get(f"{server.url}/api/incidents/{created.json()['id']}",
                         headers=server.headers).json()["timeline"]
    assert timeline[0]["actor"] == {"user": "feed:camera-gate-3", "role": "feed", "center": None}
    read = httpx.get(f"{server.url}/api/incidents/{created.json()['id']}",
                     headers={"Authorization": f"ApiKey {key}"})
    assert read.status_code == 404  # what it may not read, it is not told exists
    services = server.embedded.services  # type: ignore[attr-defined]
    assert services.authenticate_feed(_request({"X-API-Key": key}))["role"] == "feed"
    assert keys.revoke(key_id)
    refused = httpx.post(f"{server.url}/api/incidents", json=report, headers={"X-API-Key": key})
    assert refused.status_code == 401
    with pytest.raises(Problem) as info:
        services.authenticate_feed(_request({"X-API-Key": key}))
    assert info.value.status == 401
    stored = next(k for k in keys.list() if k.key_id == key_id)
    assert stored.revoked_at is not None
    assert key.split("_", 2)[2] not in Path(server.data_dir / "api_keys.db").read_bytes().decode(
        "latin-1")


def test_a_feed_key_limited_to_a_center_cannot_report_elsewhere(server: RunningServer) -> None:
    jurisdiction = server.embedded.jurisdiction  # type: ignore[attr-defined]
    grids = jurisdiction.grids()
    home = jurisdiction.centers_for(grids[0].id)[0]
    elsewhere = next(g for g in grids if jurisdiction.centers_for(g.id)[0] != home)
    _, key = server.embedded.keys.issue("sensor-1", home)  # type: ignore[attr-defined]
    body = {"source": "sensor", "category": "smoke", "description": "smoke detected"}
    ok = httpx.post(f"{server.url}/api/incidents", json={**body, "grid": grids[0].id},
                    headers={"X-API-Key": key})
    assert ok.status_code == 201
    denied = httpx.post(f"{server.url}/api/incidents", json={**body, "grid": elsewhere.id},
                        headers={"X-API-Key": key})
    assert denied.status_code == 403


# -- every auditor and admin action is recorded ---------------------------------------------


def test_every_auditor_and_admin_request_is_recorded_in_the_event_store(
    server: RunningServer,
) -> None:
    embedded: Any = server.embedded
    auditor = embedded.tokens.issue("auditor-7", "auditor", None)
    admin = embedded.tokens.issue("admin-1", "admin", None)
    before = embedded.service.recorder.max_notification_id() or 0
    httpx.get(f"{server.url}/api/centers/{root(server)}/view",
              headers={"Authorization": f"Bearer {auditor}"}).raise_for_status()
    denied = httpx.post(f"{server.url}/api/incidents", json={
        "source": "hotline", "category": "noise", "grid": _grid(server), "description": "x"},
        headers={"Authorization": f"Bearer {auditor}"})
    assert denied.status_code == 403
    httpx.get(f"{server.url}/api/centers", headers={"Authorization": f"Bearer {admin}"})
    with connect(server.console_url(root(server), auditor), open_timeout=5) as ws:
        ws.recv(timeout=5)
    records = [
        json.loads(n.state) for n in embedded.service.recorder.select_notifications(
            start=before + 1, limit=100) if n.topic.endswith("AuditRecord.Recorded")
    ]
    seen = [(r["actor"]["user"], r["action"]) for r in records]
    assert seen == [
        ("auditor-7", f"GET /api/centers/{root(server)}/view"),
        ("auditor-7", "POST /api/incidents"),
        ("admin-1", "GET /api/centers"),
        ("auditor-7", "subscribe /ws/console"),
    ]
    assert records[-1]["details"]["query"] == {"center": root(server)}


def test_the_running_server_seals_every_new_event(server: RunningServer) -> None:
    embedded: Any = server.embedded
    made = httpx.post(f"{server.url}/api/incidents", headers=server.headers, json={
        "source": "hotline", "category": "noise", "grid": _grid(server), "description": "x"})
    assert made.status_code == 201
    last = embedded.service.recorder.max_notification_id()
    deadline = time.monotonic() + 10
    while embedded.sealer.position() < last:
        assert time.monotonic() < deadline, "the background sealer did not catch up"
        time.sleep(0.05)
    result = embedded.sealer.verify()
    assert result.ok and result.count >= last, result.message


def test_the_openapi_document_declares_credentials_and_their_refusals(server: RunningServer) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            if path != "/healthz":
                assert {"401", "403"} <= set(operation["responses"]), path
