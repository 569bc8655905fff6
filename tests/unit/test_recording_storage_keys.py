"""Storage keys: the path tricks a key (or an id that becomes part of one) must not get through."""

from __future__ import annotations

import pytest

from media.storage import UnsafeStorageKey, key_parts, recording_key, safe_name


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../outside.webm",
        "c1/../../outside.webm",
        "c1/..",
        "c1/./r1.webm",
        "c1//r1.webm",
        "c1/",
        "c1\\..\\r1.webm",
        "c1/r1.webm\x00.txt",
        ".hidden/r1.webm",
        "c1/.r1.webm.staging",
        "c1/r 1.webm",
        "c1/r1.webm\n",
        "a/b/c/d/e.webm",
        "c1/r1\u2215x.webm",  # a slash look-alike
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(UnsafeStorageKey) as refused:
        key_parts(key)

    assert refused.value.key == key


@pytest.mark.parametrize("key", ["c1/r1.webm", "4f0c2b/9a1e.mkv", "c1/r1.part-2.webm", "c1"])
def test_safe_keys_are_accepted(key: str) -> None:
    assert "/".join(key_parts(key)) == key


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "a\\b", "a\x00b", ".a", "-", " a"])
def test_names_that_would_become_path_tricks_are_refused(name: str) -> None:
    with pytest.raises(UnsafeStorageKey):
        safe_name(name)


def test_a_recording_key_is_built_only_from_safe_ids() -> None:
    assert recording_key("c1", "r1", "webm") == "c1/r1.webm"
    with pytest.raises(UnsafeStorageKey):
        recording_key("c1", "../../etc/cron.d/x", "webm")
    with pytest.raises(UnsafeStorageKey):
        recording_key("c1/../c2", "r1", "webm")
    with pytest.raises(UnsafeStorageKey):
        recording_key("c1", "r1", "webm/../../x")
