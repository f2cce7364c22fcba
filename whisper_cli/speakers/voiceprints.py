"""Enrolled voices, kept in a folder: one JSON file per name with the embeddings of its clips
(never the audio), so a voice is enrolled once and used by every job and every daemon that
points at the same folder ($WT_VOICES, default $WT_CACHE_DIR/voices).

File format (version 1), NAME.json:
  {"version": 1, "name": NAME, "encoder": "campplus", "dim": 192,
   "updated_at": "2026-12-05T10:00:00Z",
   "clips": [{"file": "therapist.wav", "speech_seconds": 12.3, "embedding": [192 floats]}]}
Writes go to a temporary file renamed into place, under a lock, so that two `wt voices add`
at once both land and a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_cli.errors import InvalidOptions, WtError
from whisper_cli.speakers.enrollment import ClipPrint, combine
from whisper_cli.speakers.naming import Voiceprint

FORMAT_VERSION = 1
ENCODER = "campplus"
# Names go into every output format, RTTM included (one field, no spaces there: written with
# underscores), and name a file: letters, digits, and . _ - ' and single spaces inside.
NAME_PATTERN = re.compile(r"^[^\W_](?:[\w.'\-]| (?! ))*$")
MAX_NAME = 64


class VoiceNotFound(WtError):
    kind = "voice_not_found"


def check_name(name: str) -> str:
    if (
        not name
        or len(name) > MAX_NAME
        or not NAME_PATTERN.match(name)
        or name.endswith(" ")
        or name.upper().startswith("SPEAKER_")
    ):
        raise InvalidOptions(
            f"speaker name {name!r} is not usable",
            f"use up to {MAX_NAME} letters, digits, spaces and . _ - ' (starting with a letter or "
            "digit; SPEAKER_NN is kept for speakers nobody named)",
        )
    return name


def voices_dir() -> Path:
    given = os.environ.get("WT_VOICES")
    if given:
        return Path(given)
    from whisper_cli.models.weights import cache_dir

    return cache_dir() / "voices"


@dataclass(frozen=True)
class StoredVoice:
    name: str
    clips: list[ClipPrint]
    path: Path

    def voiceprint(self) -> Voiceprint:
        return combine(self.name, self.clips)


class VoiceStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or voices_dir()

    def _path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def get(self, name: str) -> StoredVoice:
        path = self._path(name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            known = ", ".join(v.name for v in self.list()) or "none"
            raise VoiceNotFound(
                f"no enrolled voice named {name!r} in {self.root} (enrolled: {known})",
                f"enroll it with `wt voices add {name!r} CLIP...`, or give a clip: "
                f"--speaker {name!r}=CLIP",
            ) from None
        except (OSError, ValueError) as e:
            raise VoiceNotFound(
                f"{path}: enrolled voice cannot be read ({e})",
                f"enroll it again: wt voices remove {name!r}; wt voices add {name!r} CLIP...",
            ) from None
        return _from_json(data, path)

    def list(self) -> list[StoredVoice]:
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.json")):
            try:
                out.append(_from_json(json.loads(path.read_text()), path))
            except (OSError, ValueError, KeyError):
                continue  # a foreign or broken file is not a voice; `get` says so by name
        return out

    def add(self, name: str, clips: list[ClipPrint]) -> StoredVoice:
        """Adds clips to a voice (made when new)."""
        from filelock import FileLock

        path = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            existing = self.get(name).clips if path.exists() else []
            voice = StoredVoice(name, existing + clips, path)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(_to_json(voice), indent=1))
            os.replace(tmp, path)
        return voice

    def remove(self, name: str) -> Path:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            self.get(name)  # raises VoiceNotFound with the enrolled names
        Path(str(path) + ".lock").unlink(missing_ok=True)
        return path


def _to_json(voice: StoredVoice) -> dict:
    return {
        "version": FORMAT_VERSION,
        "name": voice.name,
        "encoder": ENCODER,
        "dim": int(voice.clips[0].embedding.size) if voice.clips else 0,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "clips": [
            {
                "file": c.file,
                "speech_seconds": round(c.speech_seconds, 2),
                "embedding": [round(float(x), 6) for x in c.embedding],
            }
            for c in voice.clips
        ],
    }


def _from_json(data: dict, path: Path) -> StoredVoice:
    if data.get("version") != FORMAT_VERSION or data.get("encoder") != ENCODER:
        raise ValueError(f"version {data.get('version')}, encoder {data.get('encoder')}")
    clips = [
        ClipPrint(c["file"], np.asarray(c["embedding"], np.float32), float(c["speech_seconds"]))
        for c in data["clips"]
    ]
    return StoredVoice(data["name"], clips, path)
