"""Decoding untrusted JSON: typed, depth-bounded, every failure a status and a detail.

Every route that reads JSON from outside (HTTP bodies, the feed websocket, MQTT payloads) decodes
with a `JsonDecoder`. msgspec decodes and skips nested values recursively, and past Python's
recursion limit raises RecursionError, which is no DecodeError: a handler that catches only
msgspec's errors turns a deeply nested body into a 500 or a dropped connection. Here a document
nested deeper than MAX_JSON_DEPTH is a 400 whatever its schema, and no generic (untyped)
decoder ever runs on it.
"""

from __future__ import annotations

import array
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Generic, TypeVar

import anyio.to_thread
import msgspec
import msgspec.inspect as mi

from domain.ingest_limits import MAX_JSON_DEPTH

T = TypeVar("T")
D = TypeVar("D", bound=bytes | str)
R = TypeVar("R")

# Bodies larger than this are decoded in a worker thread, so the event loop serves other
# requests (health checks, consoles) meanwhile.
OFF_LOOP_BYTES = 32 * 1024


class InputError(Exception):
    """Input refused: `status` (400, 413, 422) and a `detail` naming what was wrong."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# A JSON string, escapes included. An unterminated one runs to the end of the input, so a
# failed match is never retried from every quote inside it (that would be quadratic).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
# Opening brackets to +1, closing to -1 (255 as a signed byte); everything else is dropped.
_STEPS = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(data: bytes | str) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without decoding it (in C
    loops, linear in its length; brackets inside strings do not count). A text too small to
    nest past MAX_JSON_DEPTH is not scanned: MAX_JSON_DEPTH stands for "at most that"."""
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return MAX_JSON_DEPTH  # at most this deep: the common case costs two counts
    steps = _STRING.sub(b"", raw).translate(_STEPS, _NOT_BRACKETS)
    return max(accumulate(array.array("b", steps)), default=0)


def check_depth(data: bytes | str) -> None:
    depth = nesting_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise InputError(400, f"JSON nested {depth} levels deep; at most {MAX_JSON_DEPTH} "
                              "levels of arrays and objects are accepted")


def _bounded(info: mi.Type, seen: frozenset[int] = frozenset()) -> bool:
    """Whether every document this type accepts nests no deeper than the type itself: no Any,
    no raw JSON, no unknown fields skipped (a skipped value can be anything), no recursion."""
    if id(info) in seen or isinstance(info, (mi.AnyType, mi.RawType, mi.CustomType)):
        return False
    seen = seen | {id(info)}
    if isinstance(info, mi.Metadata):
        return _bounded(info.type, seen)
    if isinstance(info, mi.StructType):
        return info.forbid_unknown_fields and all(_bounded(f.type, seen) for f in info.fields)
    if isinstance(info, (mi.TypedDictType, mi.DataclassType, mi.NamedTupleType)):
        # TypedDicts and dataclasses skip unknown fields; named tuples are arrays
        return isinstance(info, mi.NamedTupleType) and all(_bounded(f.type, seen)
                                                           for f in info.fields)
    if isinstance(info, mi.UnionType):
        return all(_bounded(t, seen) for t in info.types)
    if isinstance(info, mi.CollectionType):
        return _bounded(info.item_type, seen)
    if isinstance(info, mi.TupleType):
        return all(_bounded(t, seen) for t in info.item_types)
    if isinstance(info, mi.DictType):
        return _bounded(info.key_type, seen) and _bounded(info.value_type, seen)
    return True  # a scalar


class JsonDecoder(Generic[T]):
    """Decode JSON into `type`: InputError 400 when it is not JSON or nests deeper than
    MAX_JSON_DEPTH, 422 (naming the field) when it does not fit the type."""

    def __init__(self, type: type[T], what: str) -> None:
        self.decoder = msgspec.json.Decoder(type)
        self.what = what
        # A closed schema bounds the depth of whatever decodes: no need to count it then.
        self.closed = _bounded(mi.type_info(type))

    def decode(self, data: bytes | str) -> T:
        try:
            value = self.decoder.decode(data)
        except msgspec.ValidationError as exc:
            # msgspec stops at the first misfit, which may be the outer level of a deep one.
            check_depth(data)
            raise InputError(422, f"invalid {self.what}: {exc}") from None
        except msgspec.DecodeError as exc:
            raise InputError(400, f"malformed JSON: {exc}") from None
        except RecursionError:
            check_depth(data)
            raise InputError(400, "JSON nested too deep to decode; at most "
                                  f"{MAX_JSON_DEPTH} levels are accepted") from None
        if not self.closed:
            check_depth(data)
        return value


async def off_loop(decode: Callable[[D], R], data: D) -> R:
    """`decode(data)`, in a worker thread when the data is large (OFF_LOOP_BYTES)."""
    if len(data) > OFF_LOOP_BYTES:
        return await anyio.to_thread.run_sync(decode, data)
    return decode(data)
