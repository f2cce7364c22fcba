"""Turn command-line arguments into a list of input files with collision-free output names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisper_cli.audio.decode import is_audio_name
from whisper_cli.errors import InputNotFound, NotAudio, WtError


@dataclass(frozen=True)
class InputFile:
    path: Path
    stem: str  # output base name, unique within the run


@dataclass(frozen=True)
class InputProblem:
    arg: str
    error: WtError


def expand(args: list[str]) -> tuple[list[Path], list[InputProblem]]:
    """Files as given; directories walked (sorted, recursively) for audio and video files."""
    files: list[Path] = []
    problems: list[InputProblem] = []
    seen: set[Path] = set()
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and is_audio_name(p) and not p.name.startswith(".")
            )
            if not found:
                problems.append(
                    InputProblem(
                        arg,
                        NotAudio(
                            f"{arg}: directory contains no audio or video files",
                            "wt looks for files such as .wav .mp3 .flac .m4a .ogg .mp4",
                        ),
                    )
                )
            candidates = found
        elif path.exists():
            candidates = [path]
        else:
            problems.append(
                InputProblem(arg, InputNotFound(f"{arg}: no such file", "check the path"))
            )
            continue
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, problems


def assign_stems(files: list[Path]) -> list[InputFile]:
    """Output base names that never collide within one run.

    `a.mp3` alone is written as `a.*` (as openai-whisper does). When two inputs share a
    stem, both keep their extension (`a.mp3.*`, `a.wav.*`); when they still collide
    (`d1/a.mp3`, `d2/a.mp3`), parent folder names are prefixed until they differ
    (`d1-a.mp3.*`, `d2-a.mp3.*`). The result depends only on the set of inputs, so a
    rerun with --skip-existing finds the same names.
    """

    def candidate(p: Path, level: int) -> str:
        if level == 0:
            return p.stem
        parents = [part for part in p.resolve().parent.parts[1:]][::-1][: level - 1][::-1]
        return "-".join([*parents, p.name])

    level = {p: 0 for p in files}
    while True:
        names: dict[str, list[Path]] = {}
        for p in files:
            names.setdefault(candidate(p, level[p]), []).append(p)
        clashes = [group for group in names.values() if len(group) > 1]
        if not clashes:
            break
        progressed = False
        for group in clashes:
            for p in group:
                if level[p] <= len(p.resolve().parts):
                    level[p] += 1
                    progressed = True
        if not progressed:  # identical resolved paths were deduplicated; cannot happen
            break
    return [InputFile(p, candidate(p, level[p])) for p in files]
