"""Text where nobody speaks is invented: segments over silence or noise are dropped.

Whisper fills windows of silence with text, most often a copy of what it last heard (its
previous-text prompt) or a stock phrase ("Thank you very much."). Seen on the repo's own
recordings with 20 s of silence after the speech: base repeated the last sentence at 30 s,
tiny.en wrote "Thank you very much." Neither Whisper's no-speech check nor its
hallucination_silence_threshold caught these, because the invented text is fluent. Silero
VAD does: it hears no speech where the segment claims some.

Only segments that start after a gap are checked: invented text follows a silence, and the
check then costs a few milliseconds per gap instead of a VAD pass over the whole file.
"""

from __future__ import annotations

import numpy as np

from whisper_cli.audio.vad import SAMPLE_RATE, speech_clips
from whisper_cli.output.result import Segment

GAP_SECONDS = 1.0  # a segment this long after the last kept one is checked
MARGIN_SECONDS = 0.5  # heard around the segment's own times, which can be off a little


class SilenceGuard:
    """Judges the segments of `audio` one by one, in order, as the engine decodes them."""

    def __init__(self, audio: np.ndarray) -> None:
        self.audio, self.heard_to = audio, 0.0

    def keep(self, segment: Segment) -> bool:
        gap = segment.start - self.heard_to
        if gap >= GAP_SECONDS and not _has_speech(self.audio, segment):
            return False
        self.heard_to = segment.end
        return True


def _has_speech(audio: np.ndarray, segment: Segment) -> bool:
    lo = max(0, int((segment.start - MARGIN_SECONDS) * SAMPLE_RATE))
    hi = min(audio.size, int((segment.end + MARGIN_SECONDS) * SAMPLE_RATE))
    return hi > lo and bool(speech_clips(audio[lo:hi]))
