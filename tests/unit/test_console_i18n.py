"""The console's translations: zh-CN and English hold the same keys, and every key the static
markup and scripts name literally exists in both."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "command_center" / "static"
KEY = re.compile(r'^\s*"([^"]+)":', re.M)


INLINE_KEY = re.compile(r'"([a-z][\w.\-]*)":\s*"')


def languages(block: str, zh_marker: str, en_marker: str) -> dict[str, set[str]]:
    zh_start = block.index(zh_marker)
    en_start = block.index(en_marker)
    return {"zh-CN": set(INLINE_KEY.findall(block[zh_start + len(zh_marker):en_start])),
            "en": set(INLINE_KEY.findall(block[en_start:]))}


def added_strings() -> dict[str, dict[str, set[str]]]:
    """The tables other modules add with `addStrings({"zh-CN": {...}, en: {...}})`, per file."""
    found = {}
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        if "\naddStrings({" not in text:
            continue
        start = text.index("\naddStrings({")
        block = text[start:text.index("\n});", start)]
        found[path.name] = languages(block, '"zh-CN": {', "\n  en: {")
    return found


def strings() -> dict[str, set[str]]:
    source = (STATIC / "i18n.js").read_text(encoding="utf-8")
    block = source[source.index("const STRINGS = {"):source.index("const STATUS = {")]
    zh_start = block.index('"zh-CN": {')
    en_start = block.index("\n  en: {")
    langs = {"zh-CN": set(KEY.findall(block[zh_start + len('"zh-CN": {'):en_start])),
             "en": set(KEY.findall(block[en_start:]))}
    for added in added_strings().values():
        for lang in langs:
            langs[lang] |= added[lang]
    if "const SLA_STRINGS = {" in source:  # the block merged into STRINGS (issue #14)
        start = source.index("const SLA_STRINGS = {")
        extra = languages(source[start:source.index("\n};\n", start)], '"zh-CN": {', "\n  en: {")
        for lang in langs:
            langs[lang] |= extra[lang]
    return langs


def test_the_modules_adding_strings_give_both_languages_the_same_keys() -> None:
    added = added_strings()
    assert {"names.js", "drawer.js", "keys.js", "console.js"} <= set(added)
    for name, langs in added.items():
        assert langs["zh-CN"], name
        assert langs["zh-CN"] == langs["en"], name


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
