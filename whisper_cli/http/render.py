"""A job's status and result, as the replaced service and the OpenAI API show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spool.layout import RESULT_STEM, parse_time
from spool.status import COMPLETED, JobStatus


def result_json(job_dir: Path) -> dict[str, Any]:
    return json.loads((job_dir / f"{RESULT_STEM}.json").read_text(encoding="utf-8"))


def epoch(stamp: str | None) -> float | None:
    return parse_time(stamp).timestamp() if stamp else None


def legacy_status(status: JobStatus, job_dir: Path) -> dict[str, Any]:
    """The replaced service's status document: progress in percent, epoch times."""
    result = None
    if status.state == COMPLETED:
        data = result_json(job_dir)
        result = {
            "text": data["text"],
            "segments": data["segments"],
            "language": data["language"],
        }
    return {
        "job_id": status.job_id,
        "status": status.state,
        "progress": round(status.progress.fraction * 100, 1),
        "result": result,
        "error": status.error.message if status.error else None,
        "start_time": epoch(status.started_at or status.created_at),
        "end_time": epoch(status.finished_at),
    }


SEGMENT_KEYS = (
    "id",
    "seek",
    "start",
    "end",
    "text",
    "tokens",
    "temperature",
    "avg_logprob",
    "compression_ratio",
    "no_speech_prob",
)


def verbose_json(data: dict[str, Any], task: str, words: bool) -> dict[str, Any]:
    """OpenAI's verbose_json: language, duration, text, segments, and words when asked."""
    body: dict[str, Any] = {
        "task": task,
        "language": data["language"],
        "duration": data["duration"],
        "text": data["text"],
        "segments": [{k: s.get(k) for k in SEGMENT_KEYS} for s in data["segments"]],
    }
    if words:
        body["words"] = [
            {"word": w["word"].strip(), "start": w["start"], "end": w["end"]}
            for s in data["segments"]
            for w in s.get("words") or ()
        ]
    return body


def diarized_json(data: dict[str, Any], task: str) -> dict[str, Any]:
    """OpenAI's diarized_json (gpt-4o-transcribe-diarize): segments with their speaker, the
    known name where one matched, else wt's neutral label."""
    return {
        "task": task,
        "duration": data["duration"],
        "text": data["text"],
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{i}",
                "start": s["start"],
                "end": s["end"],
                "text": s["text"],
                "speaker": s.get("speaker") or "SPEAKER_00",
            }
            for i, s in enumerate(data["segments"])
        ],
        "usage": {"type": "duration", "seconds": round(float(data["duration"]), 3)},
    }
