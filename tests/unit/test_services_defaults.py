"""A Services built without identity refuses everything (deny by default)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from command_center.problems import Problem
from command_center.types import deny_all, unconfigured


def test_without_identity_nobody_is_authenticated_and_nothing_is_allowed() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                       "query_string": b""})
    with pytest.raises(Problem) as info:
        unconfigured(request)
    assert info.value.status == 503
    with pytest.raises(Problem) as denied:
        deny_all({"user": "x", "role": "admin", "center": None}, "incident.read", ["C"])
    assert denied.value.status == 403
