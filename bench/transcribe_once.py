"""One transcription in a fresh process; prints JSON with timings, peak RSS and the text.

python bench/transcribe_once.py ENGINE MODEL COMPUTE_TYPE FILE [--beam N] [--no-fallback]
  [--no-condition] [--batch N]
ENGINE: wt-faster | wt-openai | bare-faster (faster-whisper called directly) | bare-batched
(faster-whisper's BatchedInferencePipeline with its defaults, --batch N) | whisper-cpp
(a build named by $WT_WHISPER_CPP, see bench/whisper_cpp.py)
--no-fallback decodes every window once at temperature 0: no random sampling, so runs are
comparable (with fallback, a failed window is re-decoded by sampling, a different amount each run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def peak_rss_mb() -> float:
    """This process's own peak RSS. Not getrusage's ru_maxrss: Linux keeps that across fork
    and exec, so a child started by a big parent (scale.py holds an hour of audio) would
    report the parent's size."""
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "engine", choices=["wt-faster", "wt-openai", "bare-faster", "bare-batched", "whisper-cpp"]
    )
    ap.add_argument("model")
    ap.add_argument("compute")
    ap.add_argument("path")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--no-fallback", action="store_true")
    ap.add_argument("--no-condition", action="store_true", help="no previous-text prompt")
    ap.add_argument("--batch", type=int, default=1, help="wt --batch-size (0: automatic)")
    ap.add_argument("--diarize", action="store_true", help="wt --diarize")
    args = ap.parse_args()
    engine, model, compute, path, beam = (
        args.engine,
        args.model,
        args.compute,
        args.path,
        args.beam,
    )
    step = 0.0 if args.no_fallback else 0.2
    if engine == "whisper-cpp":
        import os

        from whisper_cpp import transcribe

        src = Path(os.environ["WT_WHISPER_CPP"])
        result = transcribe(src, model, path, beam, 2, not args.no_fallback, not args.no_condition)
        print(json.dumps(result))
        return
    timings: dict[str, float] = {}  # wt's own: seconds in the diarization steps
    t0 = time.perf_counter()
    if engine.startswith("bare-"):
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        from whisper_cli.models.weights import resolve_ct2

        m = WhisperModel(resolve_ct2(model), device="cpu", compute_type=compute)
        t1 = time.perf_counter()
        if engine == "bare-batched":
            segments, info = BatchedInferencePipeline(m).transcribe(
                path, beam_size=beam, batch_size=args.batch
            )
        else:
            temps = [0.0] if args.no_fallback else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
            segments, info = m.transcribe(
                path,
                beam_size=beam,
                temperature=temps,
                condition_on_previous_text=not args.no_condition,
            )
        text = "".join(s.text for s in segments)
        duration = info.duration
    else:
        from whisper_cli.engines import load_engine
        from whisper_cli.options.transcribe_options import TranscribeOptions
        from whisper_cli.transcribe import transcribe_file

        opts = TranscribeOptions(
            model=model,
            engine=engine.removeprefix("wt-"),
            compute_type=compute,
            beam_size=beam,
            temperature_increment_on_fallback=step,
            condition_on_previous_text=not args.no_condition,
            batch_size=args.batch,
            diarize=args.diarize,
        )
        load_engine(opts)
        if args.diarize:  # models loaded (and their first call made) before the clock starts
            import numpy as np

            from whisper_cli.speakers.encoder import load_encoder
            from whisper_cli.speakers.segmentation import load_segmenter

            load_encoder().embed([np.zeros(16000, np.float32)])
            load_segmenter()(np.zeros(16000, np.float32), 16000)
        t1 = time.perf_counter()
        t, _, _ = transcribe_file(Path(path), opts, timings=timings)
        text, duration = t.text, t.duration
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "load_s": t1 - t0,
                "transcribe_s": t2 - t1,
                "duration": duration,
                "rss_mb": peak_rss_mb(),
                "diarize_s": timings.get("diarize", 0.0),
                "text": text,
            }
        )
    )


if __name__ == "__main__":
    main()
