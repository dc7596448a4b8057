"""Dead letters: the camera a payload names, and plates masked in whole or cut-short payloads."""

from __future__ import annotations

import orjson
import pytest

from command_center.dead_letters import mask_plates
from command_center.payloads import camera_of

EVENT = {"type": "new", "after": {"id": "1", "camera": "cam-1", "label": "car",
                                  "recognized_license_plate": "冀G12345",
                                  "sub_label": ["冀G12345", 0.9], "zones": ["gate"]}}


def test_the_camera_comes_from_frigates_after_or_a_top_level_field() -> None:
    assert camera_of(orjson.dumps(EVENT)) == "cam-1"
    assert camera_of(orjson.dumps({"before": {"camera": "cam-2"}})) == "cam-2"
    assert camera_of(orjson.dumps({"id": "x", "camera": "cam-3"})) == "cam-3"
    assert camera_of(b"[1, 2]") is None and camera_of(b"{}") is None


def test_a_payload_that_is_not_json_still_names_its_camera() -> None:
    cut = orjson.dumps(EVENT)[:60]
    assert camera_of(cut) == "cam-1"
    assert camera_of(b"{not json") is None


def test_plates_and_sub_labels_are_masked_in_json() -> None:
    masked = orjson.loads(mask_plates(orjson.dumps(EVENT).decode()))
    assert masked["after"]["recognized_license_plate"] == "[masked]"
    assert masked["after"]["sub_label"] == "[masked]"
    assert masked["after"]["zones"] == ["gate"] and masked["after"]["camera"] == "cam-1"
    ours = orjson.loads(mask_plates('{"alerts": [{"id": "a", "plate": "P 1"}, {"plate": null}]}'))
    assert ours == {"alerts": [{"id": "a", "plate": "[masked]"}, {"plate": None}]}


@pytest.mark.parametrize("cut", range(20, len(orjson.dumps(EVENT).decode()), 7))
def test_plates_are_masked_in_a_payload_cut_anywhere(cut: int) -> None:
    text = orjson.dumps(EVENT).decode()[:cut]
    masked = mask_plates(text)
    assert "G12" not in masked
    assert masked.startswith(text[:20])  # the rest of the payload is left as it was


def test_an_unterminated_plate_value_is_masked_to_the_end() -> None:
    assert mask_plates('{"after": {"plate": "冀G12') == '{"after": {"plate": "[masked]"'
    assert mask_plates('{"sub_label": ["Li Wei", 0.8') == '{"sub_label": "[masked]"'
