"""TranscribeOptions: the one options record, built from CLI flags or from a spool sidecar.

Validation lives here only, so the daemon rejects exactly what the CLI rejects, in the
same words.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from whisper_cli.errors import InvalidOptions
from whisper_cli.output.subtitles import SubtitleLayout

ENGINES = ("faster", "openai")
TASKS = ("transcribe", "translate")
DEVICES = ("auto", "cpu", "cuda")
OUTPUT_FORMATS = ("txt", "json", "srt", "vtt", "tsv")
SPEAKER_FORMATS = ("rttm",)  # written only with diarization; "all" then includes them
KNOWN_FORMATS = OUTPUT_FORMATS + SPEAKER_FORMATS
COMPUTE_TYPES = (
    "default",
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
# Whisper's language codes (the tokenizer's list, kept here so validation needs no model import).
LANGUAGES = frozenset(
    [
        "af",
        "am",
        "ar",
        "as",
        "az",
        "ba",
        "be",
        "bg",
        "bn",
        "bo",
        "br",
        "bs",
        "ca",
        "cs",
        "cy",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "eu",
        "fa",
        "fi",
        "fo",
        "fr",
        "gl",
        "gu",
        "ha",
        "haw",
        "he",
        "hi",
        "hr",
        "ht",
        "hu",
        "hy",
        "id",
        "is",
        "it",
        "ja",
        "jw",
        "ka",
        "kk",
        "km",
        "kn",
        "ko",
        "la",
        "lb",
        "ln",
        "lo",
        "lt",
        "lv",
        "mg",
        "mi",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "ne",
        "nl",
        "nn",
        "no",
        "oc",
        "pa",
        "pl",
        "ps",
        "pt",
        "ro",
        "ru",
        "sa",
        "sd",
        "si",
        "sk",
        "sl",
        "sn",
        "so",
        "sq",
        "sr",
        "su",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "tk",
        "tl",
        "tr",
        "tt",
        "uk",
        "ur",
        "uz",
        "vi",
        "yi",
        "yo",
        "zh",
        "yue",
    ]
)

# The default model is multilingual base: it detects the language of whatever it is given
# (tiny.en would silently produce English-sounding text for other languages) and is clearly
# more accurate than tiny, while still many times faster than real time on a laptop CPU.
DEFAULT_MODEL = "base"


def default_model() -> str:
    return os.environ.get("WT_MODEL") or DEFAULT_MODEL


@dataclass(frozen=True)
class TranscribeOptions:
    model: str = DEFAULT_MODEL
    engine: str = "faster"
    language: str | None = None
    task: str = "transcribe"
    output_formats: tuple[str, ...] = OUTPUT_FORMATS
    device: str = "auto"
    compute_type: str = "default"
    beam_size: int = 5
    temperature: float = 0.0
    # openai-whisper's default: on a failed window, retry 0.2 hotter. 0 turns fallback off,
    # which makes decoding deterministic (fallback samples at random) and faster.
    temperature_increment_on_fallback: float = 0.2
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    # Words and names to favour, in every window (faster-whisper's hotwords; the openai engine
    # gets them as a prompt carried into every window, which is what hotwords are there).
    hotwords: str | None = None
    word_timestamps: bool = False
    # Whisper's guard against invented text over silences (seconds; None = off): a segment
    # that looks like a hallucination and sits next to a silence longer than this is skipped
    # and the window decoded again after the silence. Both libraries need word timings for it;
    # they are computed when it is set, and only written out when word_timestamps asks.
    hallucination_silence_threshold: float | None = None
    # wt's own guard (whisper_cli/audio/guards.py): a segment after a gap in which Silero VAD
    # hears no speech is invented text, and is dropped.
    silence_guard: bool = True
    vad: bool = False
    # >1: batched decoding (VAD cuts the audio into <= 30 s windows decoded N at a time, each
    # to its end: whisper_cli/engines/batched.py); no fallback, no previous-text prompt.
    # 1 keeps Whisper's sequential long-form algorithm. 0 (automatic): batched with
    # AUTO_BATCH_SIZE where that was measured faster at equal or lower WER (files longer than
    # one window, faster engine), sequential elsewhere (bench/longform.py).
    batch_size: int = 0
    threads: int = 0
    # Who spoke when (whisper_cli/speakers/diarize.py): a speaker on every word and segment. The
    # number of speakers is estimated between min and max unless num_speakers fixes it.
    diarize: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    # Known voices (whisper_cli/speakers/): "NAME=CLIP" (enrolled from the clip for this job;
    # several clips of one name form one voiceprint) or "NAME" (enrolled with `wt voices add`).
    # The speakers that match one are called by its name in every output.
    speakers: tuple[str, ...] = ()
    # srt/vtt layout from word timings, as openai-whisper's options of the same names.
    max_line_width: int | None = None
    max_line_count: int | None = None
    max_words_per_line: int | None = None
    highlight_words: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_formats"] = list(self.output_formats)
        data["speakers"] = list(self.speakers)
        return data

    @classmethod
    def from_mapping(cls, data: dict[str, Any], base: TranscribeOptions | None = None):
        """Build from untrusted JSON (a spool sidecar): unknown keys and wrong types are refused."""
        if not isinstance(data, dict):
            raise InvalidOptions("options must be a JSON object", "see docs/spool.md: Sidecars")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InvalidOptions(
                f"unknown option(s): {', '.join(unknown)}",
                f"known options: {', '.join(known)}",
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            values[key] = _coerce(key, value)
        if values.get("speakers"):
            from whisper_cli.speakers.known import check_clip_paths

            check_clip_paths(values["speakers"], must_be_absolute=True)
        return replace(base or cls(model=default_model()), **values)

    @property
    def needs_word_timings(self) -> bool:
        """Whether the engine must compute word timings (asked for, or needed by a guard)."""
        return (
            self.word_timestamps
            or self.hallucination_silence_threshold is not None
            or self.diarize
            or self.layout is not None
        )

    @property
    def layout(self) -> SubtitleLayout | None:
        """The subtitle layout asked for, or None for one cue per segment."""
        if (
            not (self.max_line_width or self.max_line_count or self.max_words_per_line)
            and not self.highlight_words
        ):
            return None
        return SubtitleLayout(
            self.max_line_width, self.max_line_count, self.max_words_per_line, self.highlight_words
        )

    def formats(self) -> tuple[str, ...]:
        """The formats to write: those asked for, and with diarization and every format
        asked for ("all", the default), the speaker timeline too."""
        if self.diarize and set(OUTPUT_FORMATS) <= set(self.output_formats):
            return tuple(dict.fromkeys((*self.output_formats, *SPEAKER_FORMATS)))
        return self.output_formats

    def decoding_batch(self, duration: float | None) -> int:
        """The batch size a file of `duration` seconds (None: not known) decodes with."""
        if self.batch_size:
            return self.batch_size
        sequential_only = (
            self.engine != "faster" or self.hallucination_silence_threshold is not None
        )
        if sequential_only or (duration is not None and duration <= WINDOW_SECONDS):
            return 1
        return AUTO_BATCH_SIZE

    def temperatures(self) -> tuple[float, ...]:
        """Fallback schedule as in openai-whisper's CLI: t, t+step, ... up to 1.0."""
        step = self.temperature_increment_on_fallback
        temps = [self.temperature]
        while step > 0 and temps[-1] + step <= 1.0 + 1e-9:
            temps.append(round(temps[-1] + step, 4))
        return tuple(temps)


MAX_SPEAKERS = 32
WINDOW_SECONDS = 30.0  # Whisper's window: a file this short is one window, decoded as one
AUTO_BATCH_SIZE = 4  # bench/longform.py: as fast as 8 on 2 CPU cores, 480 MB less peak memory


def parse_output_formats(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    items = [str(i).strip().lower() for i in items if str(i).strip()]
    if "all" in items:
        return OUTPUT_FORMATS
    bad = [i for i in items if i not in KNOWN_FORMATS]
    if bad or not items:
        raise InvalidOptions(
            f"unknown output format {', '.join(bad) or '(none)'}",
            f"use a comma-separated list of {', '.join(KNOWN_FORMATS)}, or all",
        )
    return tuple(dict.fromkeys(items))


_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "engine": (str,),
    "language": (str, type(None)),
    "task": (str,),
    "device": (str,),
    "compute_type": (str,),
    "beam_size": (int,),
    "temperature": (int, float),
    "temperature_increment_on_fallback": (int, float),
    "condition_on_previous_text": (bool,),
    "initial_prompt": (str, type(None)),
    "hotwords": (str, type(None)),
    "word_timestamps": (bool,),
    "hallucination_silence_threshold": (int, float, type(None)),
    "silence_guard": (bool,),
    "vad": (bool,),
    "batch_size": (int,),
    "threads": (int,),
    "diarize": (bool,),
    "num_speakers": (int, type(None)),
    "min_speakers": (int, type(None)),
    "max_speakers": (int, type(None)),
    "max_line_width": (int, type(None)),
    "max_line_count": (int, type(None)),
    "max_words_per_line": (int, type(None)),
    "highlight_words": (bool,),
}


def _coerce(key: str, value: Any) -> Any:
    if key == "output_formats":
        if not isinstance(value, (str, list)) or (
            isinstance(value, list) and not all(isinstance(v, str) for v in value)
        ):
            raise InvalidOptions("output_formats must be a string or a list of strings")
        return parse_output_formats(value)
    if key == "speakers":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidOptions(
                'speakers must be a list of strings, "NAME" or "NAME=/absolute/clip.wav"'
            )
        return tuple(value)
    expected = _TYPES[key]
    # bool is an int in Python; a JSON `true` must not pass as beam_size.
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in expected)
        raise InvalidOptions(f"option {key} must be {names}, got {json_type(value)}")
    # JSON numbers arrive as int or float; the record holds floats.
    is_float = key.startswith("temperature") or key == "hallucination_silence_threshold"
    return float(value) if is_float and value is not None else value


def json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _validate(o: TranscribeOptions) -> None:
    def choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise InvalidOptions(f"unknown {name} {value!r}", f"use one of {', '.join(allowed)}")

    if not o.model or len(o.model) > 4096 or "\0" in o.model:
        raise InvalidOptions("model must be a model name or a path", "see `wt models`")
    choice("engine", o.engine, ENGINES)
    choice("task", o.task, TASKS)
    choice("device", o.device, DEVICES)
    choice("compute type", o.compute_type, COMPUTE_TYPES)
    if o.language is not None and o.language not in LANGUAGES:
        raise InvalidOptions(
            f"unknown language {o.language!r}",
            "use a Whisper language code such as en, de, ru, or omit it to auto-detect",
        )
    if not 1 <= o.beam_size <= 20:
        raise InvalidOptions(f"beam size must be between 1 and 20, got {o.beam_size}")
    if not 0.0 <= o.temperature <= 1.0:
        raise InvalidOptions(f"temperature must be between 0 and 1, got {o.temperature}")
    if not 0.0 <= o.temperature_increment_on_fallback <= 1.0:
        raise InvalidOptions(
            "temperature increment on fallback must be between 0 (no fallback) and 1, "
            f"got {o.temperature_increment_on_fallback}"
        )
    if not 0 <= o.batch_size <= 64:
        raise InvalidOptions(
            f"batch size must be between 1 and 64, or 0 (automatic), got {o.batch_size}"
        )
    if o.batch_size > 1 and o.engine != "faster":
        raise InvalidOptions(
            f"batched decoding (batch size {o.batch_size}) needs the faster engine",
            "use --engine faster, or --batch-size 1 with the openai engine",
        )
    threshold = o.hallucination_silence_threshold
    if threshold is not None:
        if not 0.0 < threshold <= 60.0:
            raise InvalidOptions(
                "hallucination silence threshold must be between 0 and 60 seconds, "
                f"got {threshold}",
                "Whisper's own suggestion is 2",
            )
        if o.batch_size > 1:
            raise InvalidOptions(
                "the hallucination silence threshold needs sequential decoding",
                "use --batch-size 1 (batched decoding already skips silence with VAD)",
            )
    counts = {"num": o.num_speakers, "min": o.min_speakers, "max": o.max_speakers}
    for name, count in counts.items():
        if count is not None and not 1 <= count <= MAX_SPEAKERS:
            raise InvalidOptions(
                f"{name} speakers must be between 1 and {MAX_SPEAKERS}, got {count}"
            )
    if any(v is not None for v in counts.values()) and not o.diarize:
        raise InvalidOptions("speaker counts need diarization", "add --diarize")
    if o.speakers:
        from whisper_cli.speakers.known import parse_speakers

        if not o.diarize:
            raise InvalidOptions(
                "known speakers name the speakers diarization finds",
                'add --diarize (sidecar: "diarize": true)',
            )
        parse_speakers(o.speakers)
    if o.num_speakers is not None and (o.min_speakers or o.max_speakers):
        raise InvalidOptions(
            "num speakers fixes the count; min and max speakers bound an estimate",
            "give --num-speakers, or --min-speakers/--max-speakers, not both",
        )
    if o.min_speakers and o.max_speakers and o.min_speakers > o.max_speakers:
        raise InvalidOptions(
            f"min speakers ({o.min_speakers}) is more than max speakers ({o.max_speakers})"
        )
    for name, limit in (
        ("max line width", o.max_line_width),
        ("max line count", o.max_line_count),
        ("max words per line", o.max_words_per_line),
    ):
        if limit is not None and not 1 <= limit <= 1000:
            raise InvalidOptions(f"{name} must be between 1 and 1000, got {limit}")
    if not 0 <= o.threads <= 256:
        raise InvalidOptions(f"threads must be between 0 (automatic) and 256, got {o.threads}")
    if o.initial_prompt is not None and len(o.initial_prompt) > 2000:
        raise InvalidOptions("initial prompt is longer than 2000 characters")
    if o.hotwords is not None and len(o.hotwords) > 1000:
        raise InvalidOptions("hotwords are longer than 1000 characters")
    if not o.output_formats or any(f not in KNOWN_FORMATS for f in o.output_formats):
        raise InvalidOptions(
            f"unknown output format in {o.output_formats!r}",
            f"use {', '.join(KNOWN_FORMATS)} or all",
        )
    if not o.diarize and any(f in SPEAKER_FORMATS for f in o.output_formats):
        raise InvalidOptions(
            "the rttm format is a speaker timeline: it needs diarization",
            'add --diarize (sidecar: "diarize": true), or leave rttm out',
        )
