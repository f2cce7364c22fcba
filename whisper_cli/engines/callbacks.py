"""The callbacks a long step takes: progress, a stop request, each segment as it is decoded.
Shared by the engines, the transcription path and diarization; imports no engine."""

from __future__ import annotations

from collections.abc import Callable

from whisper_cli.output.result import Segment

# on_progress(seconds_done, duration_seconds); should_stop() -> True to cancel;
# on_segment(segment) as soon as a segment is decoded (live text).
ProgressFn = Callable[[float, float], None]
StopFn = Callable[[], bool]
SegmentFn = Callable[[Segment], None]
