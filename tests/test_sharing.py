"""A spool shared between users: a daemon and producers running as different uids.

The daemon runs as root here: its worker processes must start the test's own interpreter,
which on a machine whose Python lives in root's home other users cannot fully use. The
image test (tests/test_image.py) runs the daemon as a non-root user, in containers.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import as_user, speech_files

from spool.layout import Layout

SPOOL_GID = 10001  # the image's group, which producers join
PRODUCER_UID = 10002


def producer(
    *args: str | Path,
    groups: tuple[int, ...] = (SPOOL_GID,),
    timeout: float = 60,
    uid: int = PRODUCER_UID,
):
    """`wt ARGS` as another user, a member of the spool's group unless told otherwise."""
    command = [
        *as_user(uid, uid, groups),
        sys.executable,
        "-m",
        "whisper_cli",
        *map(str, args),
    ]
    env = {**os.environ, "HOME": "/tmp", "WT_CACHE_DIR": "/tmp/wt-cache", "WT_MODEL": "tiny.en"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def short_wav(open_dir) -> Path:
    """1.6 s of real speech, in a folder every user may read."""
    import shutil

    path = open_dir / "speech.wav"
    shutil.copyfile(speech_files("en")[4][0], path)
    os.chmod(path, 0o644)
    return path


def new_spool(parent: Path) -> Path:
    return parent / "spool"  # the daemon creates it


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_producer_of_another_uid_submits_cancels_reads_and_cleans(
    open_dir, daemon_factory, short_wav
):
    spool = new_spool(open_dir)
    daemon = daemon_factory("--group", str(SPOOL_GID), spool=spool)
    for folder in (spool, spool / "inbox", spool / "jobs", spool / "tmp", spool / "daemons"):
        st = folder.stat()
        assert st.st_gid == SPOOL_GID and mode(folder) & 0o2070 == 0o2070, (
            folder,
            oct(mode(folder)),
        )

    done = producer(
        "submit", short_wav, "--spool", spool, "--id", "from-api", "--wait", timeout=120
    )
    assert done.returncode == 0, done.stderr
    text = producer("result", "from-api", "--spool", spool, "-f", "txt")
    assert text.returncode == 0 and text.stdout.strip(), text.stderr
    job = spool / "jobs" / "from-api"
    # The daemon's job folder and files belong to the group and are group-writable, so the
    # producer may put a cancel marker there and remove the job later.
    assert job.stat().st_gid == SPOOL_GID and mode(job) & 0o2070 == 0o2070, oct(mode(job))
    for name in ("status.json", "result.json", "request.json"):
        assert mode(job / name) & 0o060 == 0o060, (name, oct(mode(job / name)))
    # The input stays the producer's file, readable by the daemon through the group.
    (inp,) = job.glob("input.*")
    assert inp.stat().st_uid == PRODUCER_UID and mode(inp) & 0o040

    # Another producer (another uid in the group) cancels a drop no daemon has taken yet: its
    # marker goes into a job folder it creates, which the daemon then fills.
    daemon.stop()
    queued = producer("submit", short_wav, "--spool", spool, "--id", "to-cancel")
    assert queued.returncode == 0, queued.stderr
    canceled = producer("cancel", "to-cancel", "--spool", spool, uid=PRODUCER_UID + 1)
    assert canceled.returncode == 0, canceled.stderr
    daemon = daemon_factory(spool=spool)  # no --group:
    # the setgid root says the spool is shared, and the daemon follows it.
    status = daemon.wait_for(
        lambda: (
            (s := producer("status", "to-cancel", "--spool", spool, "--json")).returncode == 0
            and json.loads(s.stdout)["state"] == "canceled"
            and s
        ),
        timeout=120,
    )
    assert status

    time.sleep(1.1)
    cleaned = producer("clean", "--older-than", "1s", "--spool", spool)
    assert cleaned.returncode == 0, cleaned.stderr
    assert (
        not (spool / "jobs" / "from-api").exists() and not (spool / "jobs" / "to-cancel").exists()
    )


def test_without_the_group_a_producer_gets_one_line_naming_the_inbox_and_the_fix(
    open_dir, daemon_factory, short_wav
):
    spool = new_spool(open_dir)
    daemon_factory(spool=spool)  # not shared
    proc = producer("submit", short_wav, "--spool", spool, groups=())
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(spool / "inbox") in lines[0] and "--group" in lines[0], lines[0]
    assert list((spool / "inbox").iterdir()) == []


def test_only_the_owner_may_share_a_spool_and_says_how(open_dir):
    spool = new_spool(open_dir)
    Layout(spool).ensure()  # root's
    command = [
        *as_user(PRODUCER_UID, PRODUCER_UID, (SPOOL_GID,)),
        sys.executable,
        "-m",
        "whisper_cli",
        "daemon",
        "--spool",
        str(spool),
        "--group",
        str(SPOOL_GID),
    ]
    env = {**os.environ, "HOME": "/tmp"}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "chgrp" in lines[0] and str(spool) in lines[0], lines
