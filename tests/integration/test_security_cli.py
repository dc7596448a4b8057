"""`linkage token`, `linkage feed-key` and `linkage serve --demo` as an operator uses them;
feed keys on SQLite and PostgreSQL; local secrets created with mode 0600."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from infra.cli.commands import main
from infra.security.api_keys import ApiKeys
from infra.security.tokens import TokenError, Tokens
from infra.settings import Settings
from tests.conftest import free_port


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    base = Settings().with_(data_dir=tmp_path / "data")
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")
        schema = request.getfixturevalue("pg_schema")
        yield base.with_(store="postgres", postgres_dsn=dsn, postgres_schema=schema)
    else:
        yield base


def test_feed_keys_are_stored_hashed_and_can_be_revoked(settings: Settings) -> None:
    keys = ApiKeys.for_settings(settings)
    key_id, key = keys.issue("camera-1", "130706001")
    assert keys.verify(key) == {"user": "feed:camera-1", "role": "feed", "center": "130706001"}
    assert keys.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.verify(f"lk_{key_id}_") is None and keys.verify("garbage") is None
    assert keys.revoke(key_id) and not keys.revoke(key_id)
    assert keys.verify(key) is None
    (info,) = keys.list()
    assert info.key_id == key_id and info.revoked_at is not None


def test_token_issue_prints_a_token_the_server_accepts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["token", "issue", "--user", "li", "--role",
                                       "township_officer", "--center", "130706001",
                                       "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    actor, expires = Tokens(Settings().with_(data_dir=data)).verify(result.output.strip())
    assert actor == {"user": "li", "role": "township_officer", "center": "130706001"}
    assert expires > time.time()
    secret = data / "jwt_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    with pytest.raises(TokenError, match="invalid token"):
        Tokens(Settings().with_(data_dir=tmp_path / "other")).verify(result.output.strip())
    # Issuing a token is an administrative act: it is recorded in the (sealed) event store.
    with sqlite3.connect(data / "events.db") as conn:
        (state,) = conn.execute("SELECT state FROM stored_events WHERE topic LIKE "
                                "'%AuditRecord.Recorded'").fetchone()
    record = json.loads(state)
    assert record["action"] == "token issue" and record["actor"]["role"] == "admin"
    assert record["details"] == {"user": "li", "role": "township_officer",
                                 "center": "130706001", "department": None}


def test_token_issue_refuses_an_unknown_center_or_a_department_without_id(tmp_path: Path) -> None:
    args = ["token", "issue", "--user", "x", "--data-dir", str(tmp_path)]
    unknown = CliRunner().invoke(main, [*args, "--role", "city_officer", "--center", "999"])
    assert unknown.exit_code == 2 and "not in the jurisdiction tree" in unknown.output
    nocenter = CliRunner().invoke(main, [*args, "--role", "township_officer"])
    assert nocenter.exit_code == 2 and "needs --center" in nocenter.output
    nodept = CliRunner().invoke(main, [*args, "--role", "department"])
    assert nodept.exit_code == 2 and "--department" in nodept.output


@pytest.mark.parametrize(("role", "center", "rule"), [
    ("grid_worker", "130700", "a grid_worker's home center must be a grid or township; "
                              "130700 is a city"),
    ("grid_worker", "130706", "130706 is a district"),
    ("city_officer", "130706001", "a city_officer's home center must be a city; 130706001 is a"),
    ("township_officer", "130706", "must be a township; 130706 is a district"),
    ("department", "130706001001001", "130706001001001 is a grid"),
])
def test_token_issue_refuses_a_home_center_at_the_wrong_level(
    tmp_path: Path, role: str, center: str, rule: str,
) -> None:
    args = ["token", "issue", "--user", "x", "--role", role, "--center", center,
            "--department", "water", "--data-dir", str(tmp_path)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and rule in " ".join(refused.output.split()), refused.output
    assert "eyJ" not in refused.output  # no token printed


def test_feed_key_commands_issue_list_and_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "data")]
    issued = runner.invoke(main, ["feed-key", "issue", "--feed", "gate-3", *data])
    assert issued.exit_code == 0, issued.output
    key_id = re.search(r"key id (\w+)", issued.output)[1]  # type: ignore[index]
    key = issued.output.strip().splitlines()[-1]
    assert key.startswith(f"lk_{key_id}_")
    listed = runner.invoke(main, ["feed-key", "list", *data])
    assert f"{key_id}\tgate-3\t-" in listed.output and "active" in listed.output
    assert key.split("_", 2)[2] not in listed.output
    assert runner.invoke(main, ["feed-key", "revoke", key_id, *data]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["feed-key", "list", *data]).output
    again = runner.invoke(main, ["feed-key", "revoke", key_id, *data])
    assert again.exit_code == 1 and "no active key" in again.output


def test_serve_demo_prints_a_login_link_that_works(tmp_path: Path) -> None:
    port = free_port()
    linkage = Path(sys.executable).parent / "linkage"
    proc = subprocess.Popen(
        [str(linkage), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--demo", "--demo-rate", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        token = None
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while token is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            found = re.search(rf"http://127\.0\.0\.1:{port}/#token=(\S+)", line)
            token = found[1] if found else None
        assert token, "no login link printed"
        headers = {"Authorization": f"Bearer {token}"}
        # The demo driver acts with a valid token: incidents appear in the city view.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                view = httpx.get(f"http://127.0.0.1:{port}/api/centers/130700/view",
                                 headers=headers)
                if view.status_code == 200 and view.json()["queue"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the demo produced no incident visible with the login token")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_short_hs256_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        Tokens(Settings().with_(data_dir=tmp_path, jwt_secret="hunter2"))


def test_pinning_rs256_without_its_public_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no public key is configured"):
        Tokens(Settings().with_(data_dir=tmp_path, jwt_algorithms=("RS256",)))
    with pytest.raises(ValueError, match="must name some of"):
        Tokens(Settings().with_(data_dir=tmp_path, jwt_algorithms=("none",)))
