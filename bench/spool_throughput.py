"""Spool throughput: 50 short clips (3-10 s) through a running daemon, against the sum of
direct in-process transcriptions and against one `wt transcribe` process per job (the
pattern of an HTTP service that loads the model per request); --pack adds the daemon with
short clips packed into shared windows.

Two sets of clips: by default clips made of the repo's real recordings (each clip several of
them, so recordings repeat within and across clips: a hard case for packing, where Whisper
tends to skip a sentence it has just heard); with --chapter, a real chapter of read speech
cut at its pauses into consecutive clips of 3-10 s, every clip different, scored as one text
against the chapter's (e.g. ../shared/longform/en_librivox_crimson_preface.wav).

  python bench/spool_throughput.py [--clips 50] [--model tiny.en] [--workers 1] [--pack]
      [--chapter WAV]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import SR, median, speech, table, write_wav

from spool.layout import parse_time
from whisper_cli.audio.decode import decode


def make_clips(n: int, out: Path) -> list[tuple[Path, str]]:
    """n clips of 3-10 s, each made of whole real recordings (so each has its reference
    text) joined with 0.25 s pauses."""
    rng = random.Random(7)
    recordings = [(decode(f), ref) for f, ref in speech("en")]
    clips = []
    for i in range(n):
        target = rng.uniform(3, 10) * SR
        parts, refs, total = [], [], 0
        while total < target:
            audio, ref = rng.choice(recordings)
            if parts and total + len(audio) > 10.5 * SR:
                break
            parts += [audio, np.zeros(SR // 4, np.float32)]
            refs.append(ref)
            total += len(audio) + SR // 4
        clips.append((write_wav(np.concatenate(parts), out / f"clip{i:02d}.wav"), " ".join(refs)))
    return clips


def chapter_clips(wav: Path, out: Path) -> list[tuple[Path, str]]:
    """The chapter cut in the middle of its pauses (0.3 s and longer) into consecutive clips
    of 3-10 s (longer only where one phrase is); together they are the whole recording."""
    from whisper_cli.engines.faster import speech_phrases

    audio = decode(wav)
    phrases = speech_phrases(audio)
    rng = random.Random(7)
    cuts, target = [0], rng.uniform(3, 10)
    for (_, end), (start, next_end) in zip(phrases, phrases[1:]):
        here = int((end + start) / 2 * SR)
        if (here - cuts[-1]) / SR >= target or next_end - cuts[-1] / SR > 10:
            cuts.append(here)
            target = rng.uniform(3, 10)
    cuts.append(audio.size)
    return [
        (write_wav(audio[a:b], out / f"clip{i:02d}.wav"), "")
        for i, (a, b) in enumerate(zip(cuts, cuts[1:]))
    ]


def start_daemon(spool: Path, *args: str, model: str) -> subprocess.Popen:
    wt = str(Path(sys.executable).parent / "wt")
    proc = subprocess.Popen(
        [wt, "daemon", "--spool", str(spool), "-m", model, "-f", "json", *args],
        stderr=subprocess.DEVNULL,
    )
    while not list((spool / "daemons").glob("*.json")) if (spool / "daemons").exists() else True:
        time.sleep(0.05)
    return proc


def drop(src: Path, inbox: Path, name: str) -> float:
    tmp = inbox / f".{name}.tmp"
    shutil.copyfile(src, tmp)
    t = time.time()
    os.rename(tmp, inbox / name)
    return t


def statuses(spool: Path) -> list[dict]:
    out = []
    for d in (spool / "jobs").iterdir():
        try:
            out.append(json.loads((d / "status.json").read_text()))
        except (FileNotFoundError, ValueError):
            pass
    return out


def wait_completed(spool: Path, n: int, every: float = 0.2) -> list[dict]:
    """The statuses of the first n completed jobs, looked at every `every` seconds: reading
    every status.json more often takes CPU from the daemon being measured (on 2 cores, a
    look every 20 ms at 42 jobs made the daemon look 10-20% slower). Times come from the
    statuses' `finished_at`, not from when the loop saw them."""
    done: dict[str, dict] = {}
    while True:
        for job in (spool / "jobs").iterdir():
            if job.name in done:
                continue
            try:
                status = json.loads((job / "status.json").read_text())
            except (FileNotFoundError, ValueError):
                continue
            if status["state"] == "completed":
                done[job.name] = status
        if len(done) >= n:
            return list(done.values())
        time.sleep(every)


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    from whisper_cli.wer import normalize, word_errors

    return sum(word_errors(r, h) for r, h in pairs) / sum(len(normalize(r)) for r, _ in pairs)


def run_direct(
    clips: list[tuple[Path, str]], model: str, language: str | None = None
) -> tuple[float, list[str]]:
    """The sum of in-process transcriptions one by one (model loaded and warmed up once,
    not counted)."""
    from whisper_cli.engines import load_engine
    from whisper_cli.options.transcribe_options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    opts = TranscribeOptions(model=model, output_formats=("json",), language=language)
    load_engine(opts)
    transcribe_file(clips[0][0], opts)  # warm-up, as the daemon gets one
    t0 = time.perf_counter()
    texts = [transcribe_file(c, opts)[0].text for c, _ in clips]
    return time.perf_counter() - t0, texts


def run_daemon(
    clips: list[tuple[Path, str]],
    spool: Path,
    model: str,
    workers: int,
    max_batch: int,
    pack: bool = False,
    language: str | None = None,
) -> tuple[float, list[str]]:
    """All clips dropped at once into a warm daemon: first drop to last `completed`."""
    extra = (["--pack"] if pack else []) + (["--language", language] if language else [])
    proc = start_daemon(
        spool, "--workers", str(workers), "--max-batch", str(max_batch), *extra, model=model
    )
    try:
        drop(clips[0][0], spool / "inbox", "warmup.wav")
        wait_completed(spool, 1)
        t0 = time.time()
        for i, (c, _) in enumerate(clips):
            drop(c, spool / "inbox", f"job{i:02d}.wav")
        done = wait_completed(spool, len(clips) + 1)
        wall = max(parse_time(s["finished_at"]).timestamp() for s in done) - t0
    finally:
        proc.terminate()
        proc.wait()
    by_name = {s["input"]["name"]: s["job_id"] for s in statuses(spool)}
    texts = [
        json.loads((spool / "jobs" / by_name[f"job{i:02d}.wav"] / "result.json").read_text())[
            "text"
        ]
        for i in range(len(clips))
    ]
    shutil.rmtree(spool)
    return wall, texts


def run_per_job(clips: list[tuple[Path, str]], model: str, out: Path) -> tuple[float, list[str]]:
    """One `wt transcribe` process per job, loading the model each time."""
    wt = str(Path(sys.executable).parent / "wt")
    t0 = time.perf_counter()
    for c, _ in clips:
        subprocess.run(
            [wt, "transcribe", str(c), "-m", model, "-f", "json", "-q", "-o", str(out)],
            check=True,
        )
    wall = time.perf_counter() - t0
    return wall, [json.loads((out / f"{c.stem}.json").read_text())["text"] for c, _ in clips]


def main() -> None:
    from whisper_cli.engines.batching import default_max_batch

    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--model", default="tiny.en")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--batch", type=int, nargs="+", default=[default_max_batch("cpu")])
    ap.add_argument("--runs", type=int, default=3, help="rounds, the ways alternating")
    ap.add_argument("--per-job", action="store_true", help="add a process-per-job row")
    ap.add_argument("--pack", action="store_true", help="add --pack rows (clips share windows)")
    ap.add_argument("--language", help="every way decodes this language (base packs only then)")
    ap.add_argument("--chapter", type=Path, help="clips cut from this wav (WAV.txt: its text)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "clips").mkdir()
    if args.chapter:
        clips = chapter_clips(args.chapter, tmp / "clips")
        chapter_text = args.chapter.with_suffix(".txt").read_text()

        def score(texts: list[str]) -> float:
            return corpus_wer([(chapter_text, " ".join(texts))])

        what = f"{len(clips)} consecutive clips of {args.chapter.stem}"
    else:
        clips = make_clips(args.clips, tmp / "clips")

        def score(texts: list[str]) -> float:
            return corpus_wer([(ref, t) for (_, ref), t in zip(clips, texts)])

        what = f"{args.clips} clips of 3-10 s made of the repo's recordings"
    audio_s = sum(len(decode(c)) for c, _ in clips) / SR
    ways: dict[str, object] = {"direct, in process, one by one (model loaded once)": None}
    ways[f"wt daemon, {args.workers} worker(s), --max-batch 1"] = 1
    for b in args.batch:
        ways[f"wt daemon, {args.workers} worker(s), --max-batch {b}"] = b
        if args.pack:
            ways[f"wt daemon, {args.workers} worker(s), --max-batch {b} --pack"] = ("pack", b)
    if args.per_job:
        ways["a process per job (model load each time)"] = "per-job"
    walls: dict[str, list[float]] = {w: [] for w in ways}
    wers: dict[str, list[float]] = {w: [] for w in ways}
    for r in range(args.runs):
        for way, how in ways.items():
            if how is None:
                wall, texts = run_direct(clips, args.model, args.language)
            elif how == "per-job":
                wall, texts = run_per_job(clips, args.model, tmp / f"per-job-{r}")
            elif isinstance(how, tuple):
                wall, texts = run_daemon(
                    clips, tmp / "spool", args.model, args.workers, how[1], True, args.language
                )
            else:
                wall, texts = run_daemon(
                    clips, tmp / "spool", args.model, args.workers, how, False, args.language
                )
            walls[way].append(wall)
            wers[way].append(score(texts))
            print(f"round {r + 1}: {way}: {wall:.1f} s, WER {wers[way][-1]:.3f}", flush=True)
    direct = median(walls[next(iter(ways))])
    rows = [
        [
            way,
            median(walls[way]),
            median(walls[way]) / direct,
            audio_s / median(walls[way]),
            median(wers[way]),
        ]
        for way in ways
    ]
    table(
        f"Spool throughput: {what} ({audio_s:.0f} s of audio), "
        f"model {args.model}, beam 5, {args.runs} rounds",
        ["how", "wall s", "vs direct", "audio s per wall s", "WER"],
        rows,
        "Medians of rounds that alternate the ways. Daemon time runs from the first drop to the "
        "last `completed` status, after one warm-up job (the model stays loaded, as in "
        "production).",
        name=f"spool_throughput-{args.model}" + (f"-{args.chapter.stem}" if args.chapter else ""),
    )


if __name__ == "__main__":
    main()
