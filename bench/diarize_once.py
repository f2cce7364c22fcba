"""One diarization system on one recording, in a fresh process (bench/diarize.py runs it).

python bench/diarize_once.py SYSTEM WAV [--transcribe MODEL]
SYSTEM: wt (this checkout) | wt-before (the checkout in $WT_BEFORE, run the same way: its
SpeakerTrack over the whole recording) | senko (senko.Diarizer on the CPU).
Prints JSON: turns [(start, end, speaker)], seconds diarizing (models loaded before), and with
--transcribe the seconds wt takes to transcribe the same file (defaults, models loaded before),
and peak memory.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time

# wt-before runs wt 0.4 (the checkout in $WT_BEFORE), whose modules sat flat in whisper_cli/.
BEFORE_MODULES = {
    "whisper_cli.audio.decode": "whisper_cli.audio",
    "whisper_cli.speakers.diarize": "whisper_cli.diarize",
    "whisper_cli.speakers.encoder": "whisper_cli.speaker_encoder",
    "whisper_cli.options.transcribe_options": "whisper_cli.options",
}


def wt_module(name: str, before: bool):
    """A module of wt by its path in this checkout, from the checkout the system runs."""
    return importlib.import_module(BEFORE_MODULES.get(name, name) if before else name)


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wt_turns(path: str, before: bool) -> tuple[list, float]:
    decode = wt_module("whisper_cli.audio.decode", before).decode
    SpeakerTrack = wt_module("whisper_cli.speakers.diarize", before).SpeakerTrack
    load_encoder = wt_module("whisper_cli.speakers.encoder", before).load_encoder

    audio = decode(path)
    track = SpeakerTrack(load_encoder())
    track.add(audio[: 16000 * 20], 0.0)  # warm up: the first network calls set up kernels
    track = SpeakerTrack(load_encoder())
    t0 = time.perf_counter()
    track.add(audio, 0.0)
    turns = [(t.start, t.end, t.speaker) for t in track.turns()]
    return turns, time.perf_counter() - t0


def senko_turns(path: str) -> tuple[list, float]:
    import senko

    diarizer = senko.Diarizer(device="cpu", warmup=True, quiet=True)
    t0 = time.perf_counter()
    result = diarizer.diarize(path)
    segments = result["merged_segments"] if result else []
    turns = [(s["start"], s["end"], s["speaker"]) for s in segments]
    return turns, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system", choices=["wt", "wt-before", "senko"])
    ap.add_argument("wav")
    ap.add_argument("--transcribe", metavar="MODEL")
    args = ap.parse_args()
    before = args.system == "wt-before"
    turns, seconds = senko_turns(args.wav) if args.system == "senko" else wt_turns(args.wav, before)
    out = {"turns": turns, "diarize_s": seconds, "rss_mb": peak_mb()}
    if args.transcribe:
        from pathlib import Path

        load_engine = wt_module("whisper_cli.engines", before).load_engine
        options_module = wt_module("whisper_cli.options.transcribe_options", before)
        TranscribeOptions = options_module.TranscribeOptions
        transcribe_file = wt_module("whisper_cli.transcribe", before).transcribe_file

        options = TranscribeOptions(model=args.transcribe)
        load_engine(options)
        t0 = time.perf_counter()
        transcribe_file(Path(args.wav), options)
        out["transcribe_s"] = time.perf_counter() - t0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
