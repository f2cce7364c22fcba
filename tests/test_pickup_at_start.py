"""A drop renamed or hard-linked into the inbox the moment the daemon says it serves the
spool (its heartbeat, what `wt health` reads) is taken at once, on a loaded machine too: the
inotify watch is armed before the heartbeat is written. Before, a drop in that window was
found by the scan and waited --settle as a file that might still be written (issue 32)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from conftest import ROOT

from spool.client import Spool

SPEECH = ROOT / "tests" / "data" / "speech" / "arctic_aew_a0001.wav"
SETTLE = 30.0  # a drop mistaken for one still being written waits this long
TAKEN_WITHIN = 8.0  # far under SETTLE, far over an intake on a busy machine (milliseconds)


def burn_cores() -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", "import time\nt=time.time()+120\nwhile time.time()<t: pass"]
        )
        for _ in range(os.cpu_count() or 2)
    ]


def test_drops_the_moment_health_says_ready_are_taken_at_once_under_load(tmp_path):
    burners = burn_cores()
    try:
        for run in range(3):
            spool = tmp_path / f"spool{run}"
            log = open(tmp_path / f"daemon{run}.log", "wb")  # noqa: SIM115
            daemon = subprocess.Popen(
                [sys.executable, "-m", "whisper_cli", "daemon", "--spool", str(spool),
                 "--settle", str(SETTLE), "--beam-size", "1"],
                env={**os.environ, "WT_MODEL": "tiny.en"}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:  # as a client polls `wt health`
                    if (spool / "daemons").is_dir() and Spool(spool).live_daemons():
                        break
                    assert daemon.poll() is None, (tmp_path / f"daemon{run}.log").read_text()
                    time.sleep(0.002)
                staged = tmp_path / f"staged{run}"
                staged.mkdir()
                shutil.copyfile(SPEECH, staged / "renamed.wav")
                shutil.copyfile(SPEECH, staged / "linked.wav")
                dropped = time.monotonic()
                os.rename(staged / "renamed.wav", spool / "inbox" / "renamed.wav")
                os.link(staged / "linked.wav", spool / "inbox" / "linked.wav")
                taken: dict[str, float] = {}
                while len(taken) < 2 and time.monotonic() - dropped < SETTLE + 10:
                    for d in (spool / "jobs").iterdir():
                        status = d / "status.json"
                        if status.exists():
                            name = __import__("json").loads(status.read_text())["input"]["name"]
                            taken.setdefault(name, time.monotonic() - dropped)
                    time.sleep(0.01)
                assert set(taken) == {"renamed.wav", "linked.wav"}, (run, taken)
                assert max(taken.values()) < TAKEN_WITHIN, (run, taken)
            finally:
                daemon.terminate()
                daemon.wait(60)
                log.close()
    finally:
        for b in burners:
            b.kill()
            b.wait()
