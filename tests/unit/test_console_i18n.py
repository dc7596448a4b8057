"""The console's translations: zh-CN and English hold the same keys, and every key the static
markup and scripts name literally exists in both."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "command_center" / "static"
KEY = re.compile(r'^\s*"([^"]+)":', re.M)


def _languages(block: str) -> dict[str, set[str]]:
    zh_start = block.index('"zh-CN": {')
    en_start = block.index("\n  en: {")
    return {"zh-CN": set(KEY.findall(block[zh_start + len('"zh-CN": {'):en_start])),
            "en": set(KEY.findall(block[en_start:]))}


def strings() -> dict[str, set[str]]:
    """STRINGS, with the blocks merged into it (`SLA_STRINGS`, issue #14)."""
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    langs = _languages(source[source.index("const STRINGS = {"):source.index("const STATUS = {")])
    if "const SLA_STRINGS = {" in source:
        start = source.index("const SLA_STRINGS = {")
        extra = _languages(source[start:source.index("\n};\n", start)])
        for lang in langs:
            langs[lang] |= extra[lang]
    return langs


def test_both_languages_have_the_same_keys() -> None:
    langs = strings()
    assert len(langs["en"]) > 100
    assert langs["zh-CN"] - langs["en"] == set()
    assert langs["en"] - langs["zh-CN"] == set()


def test_every_literal_key_is_translated() -> None:
    keys = strings()["en"]
    used: set[str] = set()
    for path in [*STATIC.glob("*.js"), *STATIC.glob("*.html")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\("([a-z][\w.\-]*)"', text))
        used |= set(re.findall(r'data-i18n(?:-title|-aria|-placeholder)?="([^"]+)"', text))
        used |= set(re.findall(r'key: "([a-z][\w.\-]*)"', text))
    # t("alerts.action." + action) and the like: a prefix, checked by the browser tests
    assert {k for k in used if not k.endswith(".")} - keys == set()
