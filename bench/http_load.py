"""`wt serve` under many clients: `python bench/http_load.py [--pollers 64] [--uploads 32]
[--upload-mb 4] [--jobs 300] [--rounds 3] [--ways "h11=--http h11 --loop asyncio" ...]`

A spool with --jobs finished jobs (status.json and result.json of a real transcription, copied)
and a fresh `wt serve` on 127.0.0.1 (no daemon: uploads become drops). Two phases per round:
1. quiet: --pollers clients each poll status (GET /status/ID, the replaced service's, and
   GET /jobs/ID, wt's) of random jobs every --interval seconds (0: as fast as answers come),
   for --seconds;
2. busy: the same polling while --uploads clients stream --upload-mb each into POST /transcribe
   at once ("the top of the hour").
Reported per phase: status reads per second, p50 and p99 latency, errors (any non-2xx or
transport error; none allowed), the server's peak RSS; and the uploads' total MB/s. Bounded:
each phase stops after --seconds, and the whole run after --rounds; traffic goes to
127.0.0.1 only. --ways: named sets of `wt serve` arguments (NAME=ARGS), run alternating,
medians over rounds (default: the pure-Python h11 parser and asyncio's loop, wt 0.5's setup,
against this checkout's defaults and --workers 2); --before REV adds the server of that git
revision with its defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, table, worktree


def make_spool(root: Path, jobs: int) -> list[str]:
    """Finished jobs made from one real-looking status and result."""
    from spool.layout import Layout, new_job_id
    from spool.status import InputInfo, JobStatus, write_status

    Layout(root).ensure()
    result = {
        "text": "For the twentieth time that evening the two men shook hands. " * 40,
        "language": "en",
        "duration": 600.0,
        "segments": [
            {"id": i, "start": i * 5.0, "end": i * 5.0 + 4.0, "text": " Some words here."}
            for i in range(120)
        ],
    }
    ids = []
    for _ in range(jobs):
        job_id = new_job_id()
        d = root / "jobs" / job_id
        d.mkdir()
        status = JobStatus(job_id, "queued", InputInfo("a.wav", "input.wav", 1000), {})
        status.advance("processing").advance("completed", outputs=["result.json"])
        write_status(d, status, durable=False)
        (d / "result.json").write_text(json.dumps(result))
        ids.append(job_id)
    return ids


def rss_kb(pid: int) -> int:
    """The server's resident memory, its worker processes included."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def start_server(
    spool: Path, port: int, extra: list[str], checkout: Path = ROOT
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(checkout), "WT_API_KEY": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "whisper_cli",
            "serve",
            "--spool",
            str(spool),
            "--port",
            str(port),
            *extra,
        ],
        env=env,
        cwd=checkout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("http_load.py: the server did not start")


async def poll(client, url, ids, stop: float, lat: list[float], errors: list, interval: float):
    await asyncio.sleep(random.random() * interval)  # pollers spread over the interval
    while time.monotonic() < stop:
        started = time.monotonic()
        job = random.choice(ids)
        path = f"/status/{job}" if random.random() < 0.5 else f"/jobs/{job}"
        t0 = time.perf_counter()
        try:
            r = await client.get(url + path)
            if r.status_code != 200:
                errors.append(r.status_code)
        except Exception as exc:  # noqa: BLE001 (every failure counts as an error)
            errors.append(type(exc).__name__)
        lat.append(time.perf_counter() - t0)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


async def upload(client, url: str, body: Path, errors: list) -> int:
    try:
        with open(body, "rb") as fh:
            r = await client.post(url + "/transcribe", files={"file": ("up.wav", fh, "audio/wav")})
        if r.status_code != 202:
            errors.append(r.status_code)
            return 0
    except Exception as exc:  # noqa: BLE001
        errors.append(type(exc).__name__)
        return 0
    return body.stat().st_size


async def phase(url, ids, args, body: Path | None, pid: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=args.pollers + args.uploads + 8)
    lat: list[float] = []
    errors: list = []
    peak = [rss_kb(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        stop = time.monotonic() + args.seconds
        t0 = time.perf_counter()
        pollers = [
            poll(client, url, ids, stop, lat, errors, args.interval) for _ in range(args.pollers)
        ]
        uploads = [upload(client, url, body, errors) for _ in range(args.uploads)] if body else []
        results = await asyncio.gather(*pollers, *uploads)
        wall = time.perf_counter() - t0
    done.set()
    sent = sum(r for r in results if isinstance(r, int))
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50": 1000 * lat[len(lat) // 2] if lat else 0.0,
        "p99": 1000 * lat[int(len(lat) * 0.99)] if lat else 0.0,
        "errors": len(errors),
        "rss": peak[0] / 1024,
        "upload_mbs": sent / 2**20 / wall if body else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pollers", type=int, default=64)
    ap.add_argument("--uploads", type=int, default=32)
    ap.add_argument("--upload-mb", type=float, default=4.0)
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--interval",
        type=float,
        default=0.25,
        help="seconds between a poller's reads (0: back to back)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--ways",
        nargs="+",
        default=[
            "h11 + asyncio (0.5)=--http h11 --loop asyncio",
            "default=",
            "--workers 2=--workers 2",
        ],
        help="NAME=wt serve arguments",
    )
    ap.add_argument("--before", help="also run the server of this git revision (defaults)")
    args = ap.parse_args()
    ways = {w.split("=", 1)[0]: w.split("=", 1)[1].split() for w in args.ways}
    checkouts = {w: ROOT for w in ways}
    if args.before:
        name = f"before ({args.before})"
        ways, checkouts = {name: [], **ways}, {name: worktree(args.before), **checkouts}
    tmp = Path(tempfile.mkdtemp(prefix="wt-http-load-"))
    body = tmp / "up.wav"
    body.write_bytes(os.urandom(int(args.upload_mb * 2**20)))
    runs: dict[str, dict[str, list[dict]]] = {w: {"quiet": [], "busy": []} for w in ways}
    port = 8765
    for r in range(args.rounds):
        order = list(ways) if r % 2 == 0 else list(ways)[::-1]
        for way in order:
            spool = tmp / f"spool-{r}-{len(runs[way]['quiet'])}-{abs(hash(way))}"
            ids = make_spool(spool, args.jobs)
            port += 1
            proc = start_server(spool, port, ways[way], checkouts[way])
            url = f"http://127.0.0.1:{port}"
            try:
                for name, up in (("quiet", None), ("busy", body)):
                    got = asyncio.run(phase(url, ids, args, up, proc.pid))
                    runs[way][name].append(got)
                    print(f"  round {r + 1} {way} {name}: {got}", file=sys.stderr)
            finally:
                proc.terminate()
                proc.wait(30)
            shutil.rmtree(spool, ignore_errors=True)
    rows = []
    for way in ways:
        for name in ("quiet", "busy"):
            m = {k: statistics.median(x[k] for x in runs[way][name]) for k in runs[way][name][0]}
            rows.append([
                way, name, f"{m['rps']:.0f}", f"{m['p50']:.1f}", f"{m['p99']:.1f}",
                int(sum(x["errors"] for x in runs[way][name])), f"{m['rss']:.0f}",
                f"{m['upload_mbs']:.0f}" if name == "busy" else "-",
            ])  # fmt: skip
    table(
        f"`wt serve` under {args.pollers} polling clients, {args.uploads} uploads of "
        f"{args.upload_mb:g} MB at once; medians of {args.rounds} rounds",
        ["wt serve", "phase", "status reads/s", "p50 ms", "p99 ms", "errors (all rounds)",
         "peak RSS MB", "uploads MB/s"],
        rows,
        f"{args.jobs} finished jobs in the spool; each poller reads GET /status/ID or "
        f"GET /jobs/ID of a random job every {args.interval:g} s (0: back to back; offered "
        f"{args.pollers / args.interval if args.interval else float('inf'):.0f} reads/s), for "
        f"{args.seconds:g} s per phase; the "
        "busy phase adds the uploads (POST /transcribe, streamed from a file) at its start. "
        "Load generator and server on the same 2-core machine, 127.0.0.1.",
        name="http-load",
    )  # fmt: skip


if __name__ == "__main__":
    main()
