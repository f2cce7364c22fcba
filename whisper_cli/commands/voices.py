"""`wt voices`: enroll, list and remove known voices (whisper_cli/speakers/voiceprints.py).

Thin: parse, call the library, print. Imports no other command module (no import circle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from whisper_cli.errors import WtError

voices_app = typer.Typer(
    help="Known voices: enroll a person once from clips of their voice, then name them in any "
    "transcript with --speaker NAME. Kept as embeddings (never audio) in $WT_VOICES.",
    no_args_is_help=True,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Folder of voices. Default: $WT_VOICES, else $WT_CACHE_DIR/voices."),
]


def _store(root: Path | None):
    from whisper_cli.speakers.voiceprints import VoiceStore

    return VoiceStore(root)


def _fail(error: WtError) -> typer.Exit:
    err.print("[red]error:[/red] " + escape(str(error)), soft_wrap=True)
    return typer.Exit(2 if error.kind in ("invalid_options", "voice_not_found") else 1)


@voices_app.command("add")
def voices_add(
    name: Annotated[str, typer.Argument(help="The name transcripts will use (e.g. Therapist).")],
    clips: Annotated[
        list[Path],
        typer.Argument(
            help="Clips of 5-30 s in which only this person speaks (any audio format); with "
            "--turns, the one recording those turns are of."
        ),
    ],
    turns: Annotated[
        Path | None,
        typer.Option(
            "--turns",
            help="The .json or .rttm wt transcribe --diarize wrote for the recording: enroll "
            "the speaker --label of it, from where they talk alone.",
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="With --turns: the speaker's label there (e.g. SPEAKER_01)."),
    ] = None,
    root: DirOpt = None,
) -> None:
    """Enroll a voice from clips, or from a speaker of a transcribed recording (more clips:
    added to the same voice)."""
    from whisper_cli.errors import InvalidOptions
    from whisper_cli.speakers.enrollment import clip_print, turns_print
    from whisper_cli.speakers.voiceprints import check_name

    try:
        check_name(name)
        if (turns is None) != (label is None):
            raise InvalidOptions(
                "--turns and --label go together", "give the turns file and the speaker's label"
            )
        if turns is not None and len(clips) != 1:
            raise InvalidOptions(
                f"--turns describes one recording, {len(clips)} were given",
                "give the one recording the turns file was written for",
            )
        if turns is not None and label is not None:
            prints = [turns_print(clips[0], turns, label, name)]
        else:
            prints = [clip_print(c, name) for c in clips]
        voice = _store(root).add(name, prints)
    except WtError as e:
        raise _fail(e) from None
    speech = sum(c.speech_seconds for c in voice.clips)
    err.print(
        f"enrolled {escape(name)}: {len(prints)} clip(s) added, {len(voice.clips)} in all, "
        f"{speech:.1f} s of speech -> {escape(str(voice.path))}"
    )


@voices_app.command("list")
def voices_list(
    root: DirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """The enrolled voices."""
    store = _store(root)
    voices = store.list()
    rows = [
        {
            "name": v.name,
            "clips": len(v.clips),
            "speech_seconds": round(sum(c.speech_seconds for c in v.clips), 1),
            "files": [c.file for c in v.clips],
            "path": str(v.path),
        }
        for v in voices
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        err.print(f"no voices enrolled in {escape(str(store.root))} (wt voices add NAME CLIP...)")
        return
    for r in rows:
        out.print(
            f"{escape(r['name'])}\t{r['clips']} clip(s)\t{r['speech_seconds']} s\t"
            + escape(", ".join(r["files"]))
        )


@voices_app.command("remove")
def voices_remove(
    name: Annotated[str, typer.Argument(help="An enrolled name.")],
    root: DirOpt = None,
) -> None:
    """Forget a voice (its file is deleted)."""
    try:
        path = _store(root).remove(name)
    except WtError as e:
        raise _fail(e) from None
    err.print(f"removed {escape(name)} ({escape(str(path))})")
