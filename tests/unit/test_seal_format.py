"""The seal chain's byte format is fixed: these digests were computed before any optimisation
and must never change (every stored chain and export depends on them)."""

from __future__ import annotations

from uuid import UUID

import pytest

from infra.security.seal_format import GENESIS, Stored, chain_hash, content_digest, digests

ID = UUID("5dec9664-1fd7-5795-b895-68d4643abb75")
STATE = '{"k":"冀"}'.encode()
CONTENT = "817ced46714e0f5a255613ed63986afe3d31ed97441aac6de47dff2ebe8c3ec3"
FROM_GENESIS = "3ba89922a417b80cb9f312ce5dfcefcba931053b196cb5a343877d124638fc35"
FROM_0_TO_31 = "96fe7acdd556df347222b5a12f64889dd286ec88620440b9f869c853780c58ef"


@pytest.mark.parametrize(
    "originator_id", [ID, str(ID), ID.hex], ids=["uuid", "uuid-str", "hex"])
@pytest.mark.parametrize("state", [STATE, memoryview(STATE), bytearray(STATE)],
                         ids=["bytes", "memoryview", "bytearray"])
def test_seal_digests_are_the_fixed_format(originator_id: object, state: bytes) -> None:
    event = Stored(7, originator_id, 3, "domain.camera_alert:CameraAlert.Raised", state)
    assert content_digest(event).hex() == CONTENT
    assert chain_hash(GENESIS, event).hex() == FROM_GENESIS
    assert chain_hash(bytes(range(32)), event).hex() == FROM_0_TO_31
    assert digests(GENESIS, event) == (content_digest(event), chain_hash(GENESIS, event))
    assert [d.hex() for d in digests(bytes(range(32)), event)] == [CONTENT, FROM_0_TO_31]
