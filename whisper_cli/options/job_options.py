"""Every job option, declared once: its flags, help and which commands take it; its default is
the TranscribeOptions field's.

`transcribe` and `daemon` take every option (the daemon's are job defaults); `submit` takes
those a job may set (not the worker-wide device, compute type and threads), each unset unless
given, so that the daemon's defaults apply. A command asks for them with @job_options and
receives the given values as one mapping of TranscribeOptions fields; adding an option is one
entry here (plus its use). The pattern is pip's cmdoptions: options defined once, composed by
commands.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any

import typer

from whisper_cli.options.transcribe_options import (
    COMPUTE_TYPES,
    DEVICES,
    ENGINES,
    TASKS,
    TranscribeOptions,
)

OUTPUT_FORMAT_FLAG_DEFAULT = "all"  # the flag's spelling of output_formats' default


@dataclass(frozen=True)
class JobOption:
    field: str  # the TranscribeOptions field it sets
    flags: tuple[str, ...]
    help: str
    kind: type  # the value's type on the command line
    per_job: bool = True  # False: one setting for a whole worker (submit cannot set it)
    show_default: bool = True
    param: str | None = None  # the command's parameter, when not named like the field
    metavar: str | None = None

    @property
    def name(self) -> str:
        return self.param or self.field

    def default(self) -> Any:
        if self.field == "output_formats":
            return OUTPUT_FORMAT_FLAG_DEFAULT
        if self.field == "model":
            return None  # $WT_MODEL or the field's default, decided when the options are built
        if self.field == "speakers":
            return None  # a repeatable option: typer's list, empty when not given
        found = next(f for f in fields(TranscribeOptions) if f.name == self.field)
        assert found.default is not MISSING
        return found.default


def _opt(field: str, flags: str | tuple[str, ...], help: str, kind: type, **kw: Any) -> JobOption:
    return JobOption(field, flags if isinstance(flags, tuple) else (flags,), help, kind, **kw)


JOB_OPTIONS: tuple[JobOption, ...] = (
    _opt("model", ("--model", "-m"), "Model name (tiny.en, base, small, large-v3, ...) or path "
         "to a model. Default: $WT_MODEL or base.", str, show_default=False),
    _opt("engine", ("--engine", "-e"), f"{' | '.join(ENGINES)}.", str),
    _opt("language", ("--language", "-l"), "Spoken language code (en, de, ...). Default: detect.",
         str),
    _opt("task", "--task", f"{' | '.join(TASKS)} (to English).", str),
    _opt("output_formats", ("--output-format", "-f"), "Comma-separated "
         "txt,json,srt,vtt,tsv,rttm or all (rttm: with --diarize; all includes it then).", str,
         param="output_format"),
    _opt("device", "--device", f"{' | '.join(DEVICES)}.", str, per_job=False),
    _opt("compute_type", "--compute-type", "Default: int8 on CPU, float16 on CUDA (faster "
         f"engine); one of {', '.join(COMPUTE_TYPES)}.", str, per_job=False),
    _opt("beam_size", "--beam-size", "Beam width (1 = greedy).", int),
    _opt("temperature", "--temperature", "Sampling temperature; falls back in steps of 0.2 on "
         "bad output.", float),
    _opt("temperature_increment_on_fallback", "--temperature-increment-on-fallback", "Step up "
         "the temperature by this much when a window fails the compression or log-prob checks; "
         "0 turns fallback off (deterministic, faster, may repeat itself).", float),
    _opt("condition_on_previous_text", "--condition-on-previous-text/"
         "--no-condition-on-previous-text", "Prompt each window with the text before it (off: "
         "fewer repetition loops).", bool),
    _opt("initial_prompt", "--initial-prompt", "Text that primes vocabulary and style for the "
         "first window.", str),
    _opt("hotwords", "--hotwords", "Words and names to favour in every window (openai engine: "
         "a carried prompt).", str, show_default=False),
    _opt("word_timestamps", "--word-timestamps/--no-word-timestamps", "Add per-word timings to "
         "json.", bool),
    _opt("hallucination_silence_threshold", "--hallucination-silence-threshold", "Seconds: skip "
         "a silence this long when the text next to it looks invented, and decode again after "
         "it (Whisper's guard; 2 is a good value). Computes word timings internally. Off by "
         "default, as in Whisper.", float, show_default=False),
    _opt("silence_guard", "--silence-guard/--no-silence-guard", "Drop text where VAD hears no "
         "speech (Whisper invents text over silence).", bool),
    _opt("vad", "--vad/--no-vad", "Skip silence with Silero VAD (both engines).", bool),
    _opt("batch_size", "--batch-size", "Decode N VAD-cut windows at once (faster engine): "
         "quicker, but no temperature fallback or previous-text prompt. 1 = Whisper's "
         "sequential algorithm; 0 = automatic: batches of 4 for files longer than 30 s, "
         "sequential otherwise.", int),
    _opt("threads", "--threads", "CPU threads (0 = automatic).", int, per_job=False),
    _opt("diarize", "--diarize/--no-diarize", "Say who spoke when: a speaker on every segment "
         "and word (offline).", bool),
    _opt("num_speakers", "--num-speakers", "Exact number of speakers (with --diarize).", int,
         show_default=False),
    _opt("min_speakers", "--min-speakers", "Fewest speakers to consider.", int,
         show_default=False),
    _opt("max_speakers", "--max-speakers", "Most speakers to consider (default 8).", int,
         show_default=False),
    _opt("speakers", "--speaker", "A known voice, by name: NAME=CLIP (a clip of 5-30 s in "
         "which only that person speaks; repeat for more clips or people) or NAME (enrolled "
         "with `wt voices add`). Matching speakers are called by the name (with --diarize).",
         list[str], show_default=False, metavar="NAME[=CLIP]"),
    _opt("max_line_width", "--max-line-width", "srt/vtt: characters in a line before it breaks "
         "(word timings computed).", int, show_default=False),
    _opt("max_line_count", "--max-line-count", "srt/vtt: lines in a cue (with "
         "--max-line-width, words flow across segments).", int, show_default=False),
    _opt("max_words_per_line", "--max-words-per-line", "srt/vtt: words in a line (no effect "
         "with --max-line-width).", int, show_default=False),
    _opt("highlight_words", "--highlight-words/--no-highlight-words", "srt/vtt: underline each "
         "word as it is spoken.", bool),
)  # fmt: skip


def _parameter(option: JobOption, unset_unless_given: bool) -> inspect.Parameter:
    default = None if unset_unless_given else option.default()
    kind: Any = option.kind
    if default is None:
        kind = kind | None
    show = option.show_default and not unset_unless_given
    info = typer.Option(*option.flags, help=option.help, show_default=show, metavar=option.metavar)
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, info],
    )


def job_options(per_job_only: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the job options to a command's parameters; the command gets them as `job`: a
    mapping of TranscribeOptions field -> value. With per_job_only (submit), only options a job
    may set, and only those given on the command line."""
    chosen = [o for o in JOB_OPTIONS if o.per_job or not per_job_only]

    def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "job"
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = {o.field: kwargs.pop(o.name) for o in chosen}
            if per_job_only:
                given = {k: v for k, v in given.items() if v is not None and v != []}
            return command(*args, job=given, **kwargs)

        extra = [_parameter(o, unset_unless_given=per_job_only) for o in chosen]
        run.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        return run

    return wrap


def build_options(job: dict[str, Any]) -> TranscribeOptions:
    """The one options record from a command's job options (all of them given)."""
    from whisper_cli.options.transcribe_options import default_model, parse_output_formats

    return TranscribeOptions(
        **{
            **job,
            "model": job["model"] or default_model(),
            "output_formats": parse_output_formats(job["output_formats"]),
            "speakers": tuple(job.get("speakers") or ()),
        }
    )
