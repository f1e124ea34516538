"""Readable result names (``cli/_output.py``) and never-overwriting writes (``artifacts.write_new``)."""

from __future__ import annotations

import os
import threading
from datetime import datetime

import pytest

from abstractvision.artifacts import write_new
from abstractvision.cli._output import SLUG_MAX_CHARS, readable_stem, slug

WHEN = datetime(2026, 12, 1, 10, 15, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A lighthouse at dawn!", "a-lighthouse-at-dawn"),
        ("  Café à l'aube, 1920s  ", "cafe-a-l-aube-1920s"),
        ("Ünïcödé 灯台 lighthouse", "unicode-lighthouse"),  # what has no ASCII form is left out
        ("灯台", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_slug_is_lowercase_ascii_words_joined_by_dashes(text, expected):
    assert slug(text) == expected


def test_slug_keeps_whole_words_up_to_the_limit():
    long = "a very long prompt about a lighthouse standing on a cliff at dawn in the fog"
    result = slug(long)
    assert len(result) <= SLUG_MAX_CHARS and long.lower().replace(" ", "-").startswith(result)
    assert not result.endswith("-") and slug(long + " more") == result
    assert slug("x" * 100) == "x" * SLUG_MAX_CHARS  # one word too long is cut


def test_readable_stem_is_time_slug_and_seed():
    assert (
        readable_stem(WHEN, "lighthouse at dawn", 1234, "text_to_image") == "20261201-101500_lighthouse-at-dawn_s1234"
    )
    assert readable_stem(WHEN, "lighthouse at dawn", None, "text_to_image") == "20261201-101500_lighthouse-at-dawn"
    assert readable_stem(WHEN, None, 5, "image_to_video") == "20261201-101500_i2v_s5"  # no prompt: the task
    assert readable_stem(WHEN, "灯台", 0, "text_to_image") == "20261201-101500_t2i_s0"


def test_write_new_never_overwrites_and_leaves_no_temporary_file(tmp_path):
    paths = [write_new(tmp_path, "stem", ".png", bytes([n])) for n in range(3)]
    assert [p.name for p in paths] == ["stem.png", "stem-2.png", "stem-3.png"]
    assert [p.read_bytes() for p in paths] == [b"\x00", b"\x01", b"\x02"]
    assert sorted(os.listdir(tmp_path)) == ["stem-2.png", "stem-3.png", "stem.png"]


@pytest.mark.timeout(30)
def test_write_new_gives_concurrent_writers_distinct_names(tmp_path):
    paths = []
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        paths.append(write_new(tmp_path, "same", ".png", str(n).encode()))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 8 and sorted(p.read_bytes() for p in paths) == [str(n).encode() for n in range(8)]


def test_write_new_without_hard_links_still_never_overwrites(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):  # a filesystem without hard links (FAT, some network shares)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    first = write_new(tmp_path, "stem", ".png", b"one")
    second = write_new(tmp_path, "stem", ".png", b"two")
    assert (first.read_bytes(), second.read_bytes()) == (b"one", b"two") and second.name == "stem-2.png"
    assert sorted(os.listdir(tmp_path)) == ["stem-2.png", "stem.png"]
