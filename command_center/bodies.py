"""Reading request bodies: media type, size limit, JSON decoding and validation."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from starlette.requests import Request

from command_center.decoding import InputError, JsonDecoder, off_loop
from command_center.problems import Problem

T = TypeVar("T")

JSON_TYPES = ("application/json", "application/merge-patch+json")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 past `limit` bytes (before reading it all)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise Problem(400, f"Content-Length must be an integer; got {declared!r}") from None
        if size > limit:
            raise Problem(413, f"body is {size} bytes; at most {limit} bytes are accepted")
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise Problem(413, f"body exceeds {limit} bytes; at most {limit} bytes are accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def check_json_media_type(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        got = repr(ctype) if ctype else "no Content-Type"
        raise Problem(415, f"expected Content-Type: application/json; got {got}")


@cache
def _decoder(into: type[Any]) -> JsonDecoder[Any]:
    return JsonDecoder(into, "request body")


def decode(body: bytes, into: type[T]) -> T:
    """Decode and validate JSON: 400 when it is not JSON (or nests too deep), 422 when a field
    is wrong."""
    decoder: JsonDecoder[T] = _decoder(into)  # type: ignore[arg-type]  # a class is hashable
    try:
        return decoder.decode(body)
    except InputError as exc:
        raise Problem(exc.status, exc.detail) from None


async def read_json(request: Request, into: type[T], limit: int, allow_empty: bool = False) -> T:
    body = await read_body(request, limit)
    if not body.strip():
        if allow_empty:
            return decode(b"{}", into)
        raise Problem(400, "empty body; expected a JSON object")
    check_json_media_type(request)
    return await off_loop(lambda data: decode(data, into), body)
