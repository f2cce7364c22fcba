"""One transcription in a fresh process; prints JSON with timings, peak RSS and the text.

python bench/transcribe_once.py ENGINE MODEL COMPUTE_TYPE FILE [BEAM]
ENGINE: wt-faster | wt-openai | bare-faster (faster-whisper called directly)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    engine, model, compute, path = sys.argv[1:5]
    beam = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    t0 = time.perf_counter()
    if engine == "bare-faster":
        # Same CTranslate2 backend as wt picks (see engines/faster.py), so that only
        # wt's own overhead is compared.
        from whisper_cli.engines.faster import prefer_fast_cpu_backend

        prefer_fast_cpu_backend()
        from faster_whisper import WhisperModel

        from whisper_cli.models import resolve_ct2

        m = WhisperModel(resolve_ct2(model), device="cpu", compute_type=compute)
        t1 = time.perf_counter()
        segments, info = m.transcribe(path, beam_size=beam)
        text = "".join(s.text for s in segments)
        duration = info.duration
    else:
        from whisper_cli.engines import load_engine
        from whisper_cli.options import TranscribeOptions
        from whisper_cli.transcribe import transcribe_file

        opts = TranscribeOptions(
            model=model, engine=engine.removeprefix("wt-"), compute_type=compute, beam_size=beam
        )
        load_engine(opts)
        t1 = time.perf_counter()
        t, _, _ = transcribe_file(Path(path), opts)
        text, duration = t.text, t.duration
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "load_s": t1 - t0,
                "transcribe_s": t2 - t1,
                "duration": duration,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "text": text,
            }
        )
    )


if __name__ == "__main__":
    main()
