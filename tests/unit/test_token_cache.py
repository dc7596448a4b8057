"""Verified bearer tokens are remembered (infra/security/tokens.py), never past their expiry,
and a caller's actor is its own copy; refusals are not remembered."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.loaders.jurisdiction import load_jurisdiction
from infra.security.tokens import TokenError, Tokens
from infra.settings import Settings


@pytest.fixture
def tokens(tmp_path: Path) -> Tokens:
    settings = Settings().with_(data_dir=tmp_path)
    return Tokens(settings, load_jurisdiction(settings.jurisdiction))


def root(tokens: Tokens) -> str:
    assert tokens.jurisdiction is not None
    return tokens.jurisdiction.root.id


def test_a_remembered_token_is_refused_once_it_expires(tokens: Tokens) -> None:
    token = tokens.issue("officer", "city_officer", root(tokens), ttl=1)
    actor, expires = tokens.verify(token)
    assert actor == {"user": "officer", "role": "city_officer", "center": root(tokens)}
    assert tokens.verify(token) == (actor, expires)  # remembered, the same verdict
    while time.time() < expires:
        time.sleep(0.05)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_each_caller_gets_its_own_actor(tokens: Tokens) -> None:
    token = tokens.issue("officer", "city_officer", root(tokens))
    first, _ = tokens.verify(token)
    first["role"] = "admin"
    second, _ = tokens.verify(token)
    assert second["role"] == "city_officer"


def test_a_refused_token_stays_refused(tokens: Tokens) -> None:
    token = tokens.issue("officer", "city_officer", root(tokens))
    # Another token's signature on this token's claims: well-formed, and wrong. (Changing the last
    # characters of the signature could make its base64 malformed instead: another refusal.)
    other = tokens.issue("someone-else", "city_officer", root(tokens))
    tampered = token.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
    for _ in range(2):
        with pytest.raises(TokenError, match="invalid token"):
            tokens.verify(tampered)
    assert tokens.verify(token)[0]["user"] == "officer"
