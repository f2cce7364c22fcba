"""A large upload through `wt serve`, before and after uploads streamed into the spool:
`python bench/upload.py [--size-mb 1024] [--rounds 3] [--before REV]`

For each way, a fresh `wt serve` (its own TMPDIR, no daemon: the upload only becomes a drop)
takes one multipart upload of --size-mb from httpx, streamed from a file with a
Content-Length. Sampled every 50 ms while it runs: the server's resident memory and the bytes
under its TMPDIR; reported: upload MB/s, the server's peak RSS over its RSS at rest, the
temp-dir peak and the bytes written to disk by the server (/proc/PID/io). Ways alternate,
medians over rounds. "before" runs the server of git revision --before (a worktree in the temp
dir), whose form parser copied each upload to TMPDIR first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, table, worktree

BEFORE = "2526a37"  # 0.5.0: Starlette's form parser, then a copy into the inbox


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def written_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def tree_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    # Unlinked but open temp files (Starlette's) count too: look at the server's open files.
    return total


def open_deleted_bytes(pid: int, folder: Path) -> int:
    total = 0
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)) and target.endswith("(deleted)"):
            try:
                total += os.stat(fd).st_blocks * 512
            except OSError:
                pass
    return total


def one(code: Path, payload: Path, work: Path) -> dict[str, float]:
    import httpx

    spool, tmp = work / "spool", work / "tmp"
    shutil.rmtree(work, ignore_errors=True)
    tmp.mkdir(parents=True)
    port = 20000 + os.getpid() % 20000
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(code), "WT_API_KEY": ""}
    cmd = [sys.executable, "-m", "whisper_cli", "serve", "--spool", str(spool)]
    cmd += ["--port", str(port), "--max-upload-size", "4G"]
    from spool.layout import Layout

    Layout(spool).ensure()
    server = subprocess.Popen(
        cmd, env=env, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        rest = rss_kb(server.pid)
        written0 = written_bytes(server.pid)
        peak = {"rss": rest, "tmp": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak["rss"] = max(peak["rss"], rss_kb(server.pid))
                in_tmp = tree_bytes(tmp) + open_deleted_bytes(server.pid, tmp)
                peak["tmp"] = max(peak["tmp"], in_tmp)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.perf_counter()
        with open(payload, "rb") as fh:
            r = httpx.post(
                url + "/transcribe", files={"file": ("big.wav", fh, "audio/wav")}, timeout=600
            )
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        assert r.status_code == 202, r.text
        size = payload.stat().st_size
        return {
            "mbps": size / seconds / 1e6,
            "rss_mb": (peak["rss"] - rest) / 1024,
            "tmp_mb": peak["tmp"] / 1e6,
            "written_mb": (written_bytes(server.pid) - written0) / 1e6,
        }
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", default=BEFORE)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="wt-upload-"))
    payload = base / "payload.wav"
    with open(payload, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(args.size_mb):
            fh.write(block)
    ways = {"before (" + args.before + ")": worktree(args.before), "now (streamed)": ROOT}
    runs: dict[str, list[dict[str, float]]] = {w: [] for w in ways}
    for r in range(args.rounds):
        order = list(ways) if r % 2 == 0 else list(ways)[::-1]
        for way in order:
            runs[way].append(one(ways[way], payload, base / "work"))
            print(way, runs[way][-1], file=sys.stderr)
    shutil.rmtree(base, ignore_errors=True)
    rows = []
    for way, got in runs.items():

        def med(key: str, got: list = got) -> float:
            return statistics.median(g[key] for g in got)

        rows.append([way, med("mbps"), med("rss_mb"), med("tmp_mb"), med("written_mb")])
    print(
        table(
            f"A {args.size_mb} MB upload through wt serve (medians of {args.rounds})",
            ["way", "upload MB/s", "server RSS growth MB", "TMPDIR peak MB", "disk MB written"],
            rows,
            "Upload from httpx on the same host, a file streamed with a Content-Length. RSS "
            "growth: the server's peak resident memory over its memory at rest.",
            name="upload",
        )
    )


if __name__ == "__main__":
    main()
