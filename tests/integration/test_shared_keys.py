"""Distributed mode shares its keys: every hub and every `--store postgres` command takes the JWT
secret and the seal key from settings, and a hub without them refuses to start, naming the
setting. Hubs used to make keys of their own under their data dirs: a token from one got 401 on
another, and `audit verify` called a history nobody touched TAMPERED (bad signature)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from infra.cli.commands import main
from infra.security.sealer import new_signing_key
from infra.store.lease import holder
from tests.conftest import free_port
from tests.integration.distributed import LINKAGE, Stack, wait_until

pytestmark = pytest.mark.integration
CITY = "130700"


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LINKAGE, "serve", "--mode", "distributed", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_hub_without_the_shared_keys_refuses_to_start_naming_the_setting(
        tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items()
           if name not in ("LINKAGE_JWT_SECRET", "LINKAGE_JWT_SECRET_FILE", "LINKAGE_SEAL_KEY")}
    env["LINKAGE_DATA_DIR"] = str(tmp_path / "var")
    no_secret = _serve(env)
    assert no_secret.returncode == 1
    assert "LINKAGE_JWT_SECRET" in no_secret.stderr and "Traceback" not in no_secret.stderr

    no_seal_key = _serve({**env, "LINKAGE_JWT_SECRET": "s" * 40})
    assert no_seal_key.returncode == 1
    assert "LINKAGE_SEAL_KEY" in no_seal_key.stderr and "Traceback" not in no_seal_key.stderr

    missing = tmp_path / "nowhere" / "seal.pem"
    no_seal_file = _serve({**env, "LINKAGE_JWT_SECRET": "s" * 40, "LINKAGE_SEAL_KEY": str(missing)})
    assert no_seal_file.returncode == 1
    assert f"LINKAGE_SEAL_KEY names {missing}" in no_seal_file.stderr
    assert not (tmp_path / "var").exists(), "a refused hub made keys under its data dir"


def test_token_issue_on_postgres_needs_the_shared_secret(postgres_dsn: str, pg_schema: str,
                                                          tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "token", "issue", "--user", "li", "--role", "auditor", "--store", "postgres",
        "--data-dir", str(tmp_path)], env={
        "LINKAGE_POSTGRES_DSN": postgres_dsn, "LINKAGE_POSTGRES_SCHEMA": pg_schema,
        "LINKAGE_JWT_SECRET": None, "LINKAGE_JWT_SECRET_FILE": None})
    assert result.exit_code == 1
    assert "LINKAGE_JWT_SECRET" in result.output
    assert not (tmp_path / "jwt_secret").exists()


def test_hubs_with_their_own_data_dirs_share_tokens_and_one_sealed_chain(
        tmp_path: Path, postgres_dsn: str, pg_schema: str, redis_url: str) -> None:
    # Hubs need no broker: the address is never dialled.
    stack = Stack(tmp_path, postgres_dsn, pg_schema, redis_url, "127.0.0.1:9")
    try:
        hubs = []
        for name in ("hub1", "hub2"):
            port = free_port()
            stack.start(name, "serve", "--mode", "distributed", "--port", str(port),
                        LINKAGE_DATA_DIR=str(tmp_path / name), LINKAGE_SEAL_CHECKPOINT_EVERY="2")
            hubs.append(f"http://127.0.0.1:{port}")
        for name in ("hub1", "hub2"):
            wait_until(lambda n=name: "Uvicorn running" in stack.log(n)
                       or stack.processes[n].poll() is not None, 60, what=f"{name} listening")
            assert stack.processes[name].poll() is None, stack.log(name)

        # A token from the CLI on this machine, with the deployment's settings.
        cli_dir = tmp_path / "cli"
        issued = subprocess.run([LINKAGE, "token", "issue", "--user", "li", "--role",
                                 "city_officer", "--center", CITY, "--store", "postgres",
                                 "--data-dir", str(cli_dir)], env=stack.env, capture_output=True,
                                text=True, timeout=60)
        assert issued.returncode == 0, issued.stderr
        headers = {"Authorization": f"Bearer {issued.stdout.strip()}"}
        ids = []
        for hub in hubs:
            response = httpx.post(f"{hub}/api/incidents", headers=headers, timeout=10, json={
                "source": "hotline", "category": "noise", "severity": "routine",
                "grid": stack.jurisdiction.grids()[0].id, "description": f"through {hub}"})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        for hub, incident in zip(hubs, reversed(ids), strict=True):  # each reads the other's
            assert httpx.get(f"{hub}/api/incidents/{incident}", headers=headers,
                             timeout=10).status_code == 200

        # The CLI's audit record went to PostgreSQL, not to a SQLite file under its data dir.
        with psycopg.connect(postgres_dsn) as conn:
            actions = conn.execute(
                f"SELECT convert_from(state, 'UTF8')::json->>'action' FROM {pg_schema}."
                "linkage_events WHERE topic LIKE '%%AuditRecord.Recorded'").fetchall()
        assert ("token issue",) in actions
        assert not (cli_dir / "events.db").exists()

        # One sealer (one hub holds its lease), signing with the shared key: the chain verifies.
        sealer = holder(postgres_dsn, "sealer", pg_schema)
        pids = {str(stack.processes[name].pid) for name in ("hub1", "hub2")}
        assert sealer is not None and sealer.split(" pid ")[1].split()[0] in pids

        def verified() -> subprocess.CompletedProcess[str] | None:
            result = subprocess.run([LINKAGE, "audit", "verify", "--store", "postgres",
                                     "--postgres-schema", pg_schema, "--strict"],
                                    env=stack.env, capture_output=True, text=True, timeout=60)
            return result if result.returncode == 0 else None

        result = wait_until(verified, 60, 0.5, "every event sealed and verified")
        assert result.stdout.startswith("verified"), result.stdout
    finally:
        stack.close()


def test_linkage_up_hands_its_children_one_set_of_keys(tmp_path: Path) -> None:
    """`linkage up` makes the keys once, mode 0600, and reuses them on its next run."""
    from infra.cli.up import shared_keys
    from infra.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", jwt_secret="", jwt_secret_file="",
                        seal_key_path="")
    env = shared_keys(settings)
    secret, seal_key = Path(env["LINKAGE_JWT_SECRET_FILE"]), Path(env["LINKAGE_SEAL_KEY"])
    assert secret.parent == seal_key.parent == (tmp_path / "var").absolute()
    for path in (secret, seal_key):
        assert path.stat().st_mode & 0o777 == 0o600
    before = secret.read_bytes(), seal_key.read_bytes()
    assert shared_keys(settings) == env
    assert (secret.read_bytes(), seal_key.read_bytes()) == before

    # Configured keys are passed on as they are, never replaced.
    configured = tmp_path / "seal.pem"
    configured.write_bytes(new_signing_key())
    given = shared_keys(settings.with_(jwt_secret="s" * 40, seal_key_path=str(configured)))
    assert given == {"LINKAGE_SEAL_KEY": str(configured)}
