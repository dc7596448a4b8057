"""The witness file and head files: the line format, what `--expect-head` reads, the warning for
a witness inside the data dir."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from infra.security.witness import Head, HeadFileError, Witness, encode, read_heads, witness_for
from infra.settings import Settings

HEAD = Head(checkpoint=2, notification_id=8, count=8, hash="ab" * 32, time="2026-05-01T00:00:00Z",
            key="ed25519:0011223344556677", signature="cd" * 64)


def test_a_head_is_one_json_line_whose_kind_and_version_name_its_format() -> None:
    line = encode(HEAD)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert list(orjson.loads(line)) == ["kind", "version", "checkpoint", "notification_id",
                                        "count", "hash", "time", "key", "signature"]
    assert orjson.loads(line)["kind"] == "linkage-seal-head" and orjson.loads(line)["version"] == 1


def test_the_witness_appends_and_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "witness.jsonl"
    witness = Witness(path)
    witness.append([HEAD])
    witness.append([])
    witness.append([HEAD, HEAD])
    assert path.read_bytes() == encode(HEAD) * 3
    assert [n for n, _ in read_heads(path)] == [1, 2, 3]


def test_heads_are_read_from_one_object_a_witness_file_or_an_export_record(tmp_path: Path) -> None:
    pretty = tmp_path / "head.json"
    pretty.write_bytes(orjson.dumps(orjson.loads(encode(HEAD)), option=orjson.OPT_INDENT_2))
    assert read_heads(pretty) == [(1, HEAD)]
    lines = tmp_path / "witness.jsonl"
    lines.write_bytes(encode(HEAD) + b"\n" + encode(HEAD))
    assert read_heads(lines) == [(1, HEAD), (3, HEAD)]
    record = tmp_path / "checkpoint.json"  # a checkpoint line of `linkage audit export`
    record.write_bytes(orjson.dumps({"checkpoint": 2, "notification_id": 8, "count": 8,
                                     "hash": HEAD.hash, "signature": HEAD.signature}))
    ((_, head),) = read_heads(record)
    assert (head.checkpoint, head.hash, head.key) == (2, HEAD.hash, None)


@pytest.mark.parametrize(("content", "expected"), [
    (encode(HEAD) + b'{"kind":"linkage-seal-head","version":2}\n',
     "line 2: kind 'linkage-seal-head' version 2 is not a format this linkage reads"),
    (encode(HEAD).replace(b'"count":8', b'"count":0'),
     "line 1: Expected `int` >= 1 - at `$.count`"),
    (encode(HEAD).replace(b"ab" * 32, b"xy" * 32), "line 1: Expected `str` matching regex"),
    (encode(HEAD) + encode(HEAD)[:40],
     "(the last line has no newline: if the writer stopped mid-line, remove that line)"),
    (b"[1, 2]", "line 1: Expected `object`, got `array`"),
], ids=["future-version", "zero-count", "not-hex", "torn-last-line", "not-an-object"])
def test_a_head_file_that_is_not_heads_is_named_by_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "heads.jsonl"
    path.write_bytes(content)
    with pytest.raises(HeadFileError) as raised:
        read_heads(path)
    assert expected in str(raised.value)
    assert "expected a signed head" in str(raised.value)


def test_a_witness_inside_the_data_dir_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings().with_(data_dir=tmp_path / "data")
    assert witness_for(settings) is None
    with caplog.at_level(logging.WARNING, logger="infra.security.witness"):
        outside = witness_for(settings.with_(seal_witness=str(tmp_path / "elsewhere" / "w")))
        assert outside is not None and not caplog.records
        inside = witness_for(settings.with_(seal_witness=str(tmp_path / "data" / "w.jsonl")))
    assert inside is not None and inside.path == tmp_path / "data" / "w.jsonl"
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "lies inside the data dir" in record.getMessage()
