"""Voice activity detection: where the speech is, as Whisper clip timestamps.

Both engines skip silence the same way: Silero VAD (shipped with faster-whisper) finds the
speech regions, and each engine decodes only those regions of the original timeline
(`clip_timestamps`). faster-whisper's own `vad_filter` instead glues the speech together and
maps times back afterwards, which puts a segment that starts near a join at the end of the
speech before the silence (seen in tests: a sentence spoken after 25 s of silence was
stamped 25 s early; SYSTRAN/faster-whisper issues 230 and 1119).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # Whisper's mel frame: 10 ms


def speech_clips(audio: np.ndarray) -> list[float]:
    """[start, end, start, end, ...] in seconds; empty when there is no speech at all."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    # Clip ends are kept inside the last whole mel frame: openai-whisper rounds a clip end to
    # frames and, when that lands one frame past the audio, decodes empty windows forever
    # (found by a test: a recording whose speech runs to its very last sample hung).
    last_frame = len(audio) // HOP_LENGTH
    clips: list[float] = []
    for region in get_speech_timestamps(audio, VadOptions()):
        start = region["start"] // HOP_LENGTH
        end = min(-(-region["end"] // HOP_LENGTH), last_frame)
        if end > start:
            clips += [start / 100, end / 100]
    return clips
