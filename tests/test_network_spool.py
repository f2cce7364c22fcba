"""A spool shared over a network filesystem, for real: one folder mounted twice through sshfs
(a local sshd, FUSE), a daemon on each mount in its own UTS namespace with its own host name
(so neither can see the other's processes: each knows the other only from the spool), drops
on both mounts, one daemon killed with SIGKILL mid-run. Every job completes exactly once.

Needs root (namespaces, FUSE mounts), sshfs and openssh-server (Debian: `apt-get install
sshfs openssh-server`) and /dev/fuse; without them the test fails and says what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import DaemonProcess, free_port, run_wt, speech_files

CLIPS = 8


def _missing() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (for namespaces and FUSE mounts)")
    for tool, package in (
        ("sshfs", "sshfs"),
        ("sshd", "openssh-server"),
        ("ssh-keygen", "openssh-client"),
    ):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing.append(f"{tool} (apt-get install {package})")
    if not Path("/dev/fuse").exists():
        missing.append("/dev/fuse (FUSE)")
    if shutil.which("unshare") is None:
        missing.append("unshare (util-linux)")
    return missing


@pytest.fixture
def two_mounts(tmp_path):
    """(the exported folder, mount A, mount B): one folder, two sshfs clients."""
    missing = _missing()
    if missing:
        pytest.fail("the network-filesystem test needs " + ", ".join(missing))
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True
        )
    shutil.copy(keys / "client.pub", keys / "authorized_keys")
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nUsePAM no\nStrictModes no\nPidFile {keys / 'sshd.pid'}\n"
        "Subsystem sftp internal-sftp\nMaxStartups 20\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(
        [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(keys / "sshd.log", "wb"),  # noqa: SIM115 (closed with the process)
    )
    exported = tmp_path / "export"
    exported.mkdir()
    mounts = [tmp_path / "mnt-a", tmp_path / "mnt-b"]
    try:
        for mnt in mounts:
            mnt.mkdir()
            command = [
                "sshfs", f"root@127.0.0.1:{exported}", str(mnt), "-p", str(port),
                "-o", f"IdentityFile={keys / 'client'},StrictHostKeyChecking=no,"
                "UserKnownHostsFile=/dev/null,LogLevel=ERROR,"
                # Each client asks the server every time (no attribute or directory cache),
                # as NFS mounted with actimeo=0 does: claims depend on what the others wrote.
                "dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0",
            ]  # fmt: skip
            for _ in range(50):  # sshd may take a moment to listen
                if subprocess.run(command, capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                pytest.fail("sshfs could not mount: " + (keys / "sshd.log").read_text())
        yield exported, mounts[0], mounts[1]
    finally:
        for mnt in mounts:
            subprocess.run(["fusermount", "-u", "-z", str(mnt)], capture_output=True)
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        sshd.terminate()
        sshd.wait(10)


def _on_host(name: str) -> list[str]:
    """Run the daemon in a UTS namespace of its own, under its own host name."""
    return ["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh"]


def _events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_two_hosts_share_a_spool_over_sshfs_and_a_killed_one_loses_no_job(two_mounts, tmp_path):
    from spool.layout import Layout

    exported, mnt_a, mnt_b = two_mounts
    Layout(exported).ensure()
    args = ("--poll", "--max-batch", "1", "--log-format", "json")
    a = DaemonProcess(mnt_a, *args, prefix=_on_host("host-a")).start()
    b = DaemonProcess(mnt_b, *args, prefix=_on_host("host-b")).start()
    try:
        beats = [json.loads(p.read_text()) for p in (exported / "daemons").glob("*.json")]
        assert {beat["host"] for beat in beats} == {"host-a", "host-b"}, beats
        recordings = [f for f, _ in speech_files("en")]
        names = []
        for i in range(CLIPS):
            mount = mnt_a if i % 2 else mnt_b
            name = f"clip-{i}.wav"
            clip = shutil.copy(recordings[i % len(recordings)], tmp_path / name)
            submitted = run_wt("submit", str(clip), "--spool", str(mount))
            assert submitted.returncode == 0, submitted.stderr
            names.append(name)
        # Host B dies (SIGKILL, no goodbye) while it holds a job.
        b.wait_for(
            lambda: any(
                j["state"] == "processing" and j.get("worker", {}).get("host") == "host-b"
                for j in b.jobs()
            ),
            timeout=300,
        )
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(30)
        # Host A takes back what B held once B's heartbeat is stale, and finishes everything.
        jobs = [a.wait_state(n, ("completed", "failed", "canceled"), timeout=600) for n in names]
        assert [j["state"] for j in jobs] == ["completed"] * CLIPS, jobs
        assert len(list((exported / "jobs").iterdir())) == CLIPS  # one job per drop
        assert not [p for p in (exported / "inbox").iterdir() if not p.name.startswith(".")]
        for j in jobs:
            text = (exported / "jobs" / j["job_id"] / "result.txt").read_text()
            assert text.strip(), j
        completed = Counter(
            e["job"] for log in (a.log, b.log) for e in _events(log) if e["event"] == "completed"
        )
        assert sorted(completed) == sorted(j["job_id"] for j in jobs)
        assert set(completed.values()) == {1}, completed  # none completed twice
        assert any(e["event"] == "recovered" for e in _events(a.log)), a.log.read_text()
    finally:
        for d in (a, b):
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait(30)
