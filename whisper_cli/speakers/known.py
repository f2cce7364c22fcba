"""What a job asks for with `--speaker NAME[=CLIP]` (sidecar "speakers"), resolved into
voiceprints: a name with clips is enrolled from them for this job (several clips of one name
form one voiceprint); a name alone is a voice enrolled before (`wt voices add`).
"""

from __future__ import annotations

import functools
from pathlib import Path

from whisper_cli.errors import InvalidOptions
from whisper_cli.speakers.naming import Voiceprint
from whisper_cli.speakers.voiceprints import VoiceStore, check_name

MAX_KNOWN = 16


def parse_speakers(specs: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """NAME -> its clip paths (empty: an enrolled voice), in the order given."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, clip = spec.partition("=")
        name = check_name(name.strip())
        if sep and not clip.strip():
            raise InvalidOptions(
                f"--speaker {spec!r} names no clip",
                "give NAME=CLIP, or NAME for a voice enrolled with `wt voices add`",
            )
        out.setdefault(name, [])
        if sep:
            out[name].append(clip.strip())
    if len(out) > MAX_KNOWN:
        raise InvalidOptions(f"{len(out)} known speakers given", f"give at most {MAX_KNOWN}")
    return out


def check_clip_paths(specs: tuple[str, ...], must_be_absolute: bool) -> None:
    """A sidecar is read by a daemon in another folder (maybe on another host): its clips
    are named by absolute paths on the shared volume."""
    for name, clips in parse_speakers(specs).items():
        for clip in clips:
            if must_be_absolute and not Path(clip).is_absolute():
                raise InvalidOptions(
                    f"speaker {name}: clip path {clip!r} is relative",
                    "a job's clips are read by the daemon: give absolute paths it can read "
                    "(wt submit makes them absolute), or enroll the voice with `wt voices add`",
                )


def resolve(specs: tuple[str, ...], store: VoiceStore | None = None, should_stop=None):
    """The voiceprints a job asks for; errors name the clip or the voice and the fix."""
    from whisper_cli.speakers.enrollment import combine

    prints: list[Voiceprint] = []
    for name, clips in parse_speakers(specs).items():
        if clips:
            prints.append(combine(name, [_clip(Path(c), name) for c in clips]))
        else:
            prints.append((store or VoiceStore()).get(name).voiceprint())
    return tuple(prints)


def _clip(path: Path, name: str):
    """A clip's voice, enrolled once per process while the file is unchanged: `wt transcribe
    dir/ --speaker X=clip.wav` and a daemon's jobs do not enroll it again for every input."""
    from whisper_cli.errors import InputNotFound

    try:
        stat = path.stat()
    except OSError:
        raise InputNotFound(
            f"{path}: reference clip for {name} not found", "check the path after --speaker NAME="
        ) from None
    return _clip_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size, name)


@functools.lru_cache(maxsize=64)
def _clip_cached(path: str, mtime_ns: int, size: int, name: str):
    from whisper_cli.speakers.enrollment import clip_print

    return clip_print(Path(path), name)


def absolute_clips(specs: list[str] | tuple[str, ...]) -> list[str]:
    """NAME=CLIP with the clip's path made absolute (a daemon reads it from elsewhere)."""
    out = []
    for spec in specs:
        name, sep, clip = spec.partition("=")
        out.append(f"{name}={Path(clip.strip()).resolve()}" if sep and clip.strip() else spec)
    return out
