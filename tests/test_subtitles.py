"""Subtitle layout (openai-whisper's --max-line-width, --max-line-count, --max-words-per-line,
--highlight-words), checked by parsing the files the real engine writes."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_wt
from test_diarize import TWO_MEN, conversation

from whisper_cli.options.transcribe_options import TranscribeOptions

CUE = re.compile(
    r"(\d\d:\d\d:\d\d[,.]\d{3}) --> (\d\d:\d\d:\d\d[,.]\d{3})\n(.+?)(?:\n\n|\n?$)", re.S
)


def seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def cues(text: str) -> list[tuple[float, float, list[str]]]:
    return [(seconds(a), seconds(b), body.split("\n")) for a, b, body in CUE.findall(text)]


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    return conversation(TWO_MEN, tmp_path_factory.mktemp("subs") / "talk.wav")[0]


def layout(talk, tmp_path, fmt: str, *args: str):
    proc = run_wt("transcribe", talk, "-o", tmp_path, "-f", f"{fmt},json", "-q", *args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "talk.json").read_text())
    return cues((tmp_path / f"talk.{fmt}").read_text()), doc


def words_of(doc: dict) -> list[str]:
    return " ".join(s["text"] for s in doc["segments"]).split()


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_width_and_line_count_hold_and_every_word_comes_in_order(talk, tmp_path, fmt):
    found, doc = layout(talk, tmp_path, fmt, "--max-line-width", "24", "--max-line-count", "2")
    assert len(found) > 4
    assert all(len(line) <= 24 for _, _, lines in found for line in lines), found
    assert all(len(lines) <= 2 for _, _, lines in found), found
    assert [w for _, _, lines in found for line in lines for w in line.split()] == words_of(doc)
    starts = [a for a, _, _ in found]
    assert starts == sorted(starts) and all(a <= b for a, b, _ in found)
    assert all("words" not in s for s in doc["segments"])  # timings computed, not written


def test_words_per_line(talk, tmp_path):
    found, doc = layout(talk, tmp_path, "srt", "--max-words-per-line", "3")
    assert all(len(line.split()) <= 3 for _, _, lines in found for line in lines)
    assert [w for _, _, lines in found for line in lines for w in line.split()] == words_of(doc)


def test_highlight_words_underlines_each_word_once_in_time_order(talk, tmp_path):
    found, doc = layout(talk, tmp_path, "vtt", "--highlight-words")
    underlined = [re.findall(r"<u>(.+?)</u>", "\n".join(lines)) for _, _, lines in found]
    assert all(len(u) == 1 for u in underlined), underlined
    assert [u[0] for u in underlined] == words_of(doc)  # every word, once, in order
    starts = [a for a, _, _ in found]
    assert starts == sorted(starts)


def test_layout_options_are_sidecar_options_and_validated():
    o = TranscribeOptions.from_mapping(
        {"max_line_width": 42, "max_line_count": 2, "highlight_words": True},
        TranscribeOptions(model="tiny.en"),
    )
    assert o.layout is not None and o.needs_word_timings and not o.word_timestamps
    proc = run_wt("transcribe", "x.wav", "--max-line-width", "0")
    assert proc.returncode == 2 and "max line width" in proc.stderr
