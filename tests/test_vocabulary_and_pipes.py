"""--hotwords (both engines) and `-o -` (one format to stdout, for pipes)."""

from __future__ import annotations

import re

import pytest
from conftest import SPEECH, run_wt

# "Not at this particular case, Tom, apologized Whittemore." tiny.en hears the name as
# "to it more" (faster) or "Whitmore" (openai); told the name, both write it.
WHITTEMORE = SPEECH / "arctic_aew_a0002.wav"


@pytest.mark.parametrize("engine", ["faster", "openai"])
def test_hotwords_make_a_rare_name_come_out_right(engine):
    plain = run_wt("transcribe", WHITTEMORE, "-e", engine, "-f", "txt", "-o", "-", "-q")
    hinted = run_wt(
        "transcribe", WHITTEMORE, "-e", engine, "-f", "txt", "-o", "-", "-q",
        "--hotwords", "Whittemore",
    )  # fmt: skip
    assert plain.returncode == 0 and hinted.returncode == 0, plain.stderr + hinted.stderr
    assert "Whittemore" not in plain.stdout, plain.stdout
    assert "Whittemore" in hinted.stdout, hinted.stdout


def test_output_dir_dash_prints_one_format_and_writes_nothing(tmp_path):
    proc = run_wt("transcribe", WHITTEMORE, "-f", "srt", "-o", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cues = proc.stdout.strip().split("\n\n")
    assert cues and all(
        re.fullmatch(r"\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n.+", c, re.S)
        for c in cues
    ), proc.stdout
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a folder named "-"


def test_output_dir_dash_refuses_what_a_pipe_cannot_carry(tmp_path):
    for args in (["-f", "srt,txt"], [], ["-f", "txt", "--json"]):
        proc = run_wt("transcribe", WHITTEMORE, "-o", "-", *args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""
    other = SPEECH / "arctic_aew_a0001.wav"
    two = run_wt("transcribe", WHITTEMORE, other, "-f", "txt", "-o", "-", cwd=tmp_path)
    assert two.returncode == 2 and "one file" in two.stderr
