"""Subtitle layout: cues of limited line width, line count and words per line, from word
timings, with openai-whisper's option names and meaning (--max-line-width,
--max-line-count, --max-words-per-line, --highlight-words)."""

from __future__ import annotations

from dataclasses import dataclass

from whisper_cli.output.result import Transcript, Word

PAUSE_SPLIT = 3.0  # seconds: a longer pause between words starts a new cue


@dataclass(frozen=True)
class SubtitleLayout:
    max_line_width: int | None = None
    max_line_count: int | None = None
    max_words_per_line: int | None = None
    highlight_words: bool = False


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[tuple[Word, ...], ...]
    speaker: str | None = None
    highlight: Word | None = None  # the word being spoken, underlined

    def text(self) -> str:
        def show(w: Word) -> str:
            if w is self.highlight:
                stripped = w.word.strip()
                return w.word.replace(stripped, f"<u>{stripped}</u>") if stripped else w.word
            return w.word

        return "\n".join("".join(show(w) for w in line).strip() for line in self.lines)


def _line_text(line: list[Word]) -> str:
    return "".join(w.word for w in line).strip()


def layout_cues(t: Transcript, layout: SubtitleLayout) -> list[Cue]:
    """Cues follow segments unless both a width and a line count are given (as in
    openai-whisper); then words flow across segments into cues of that many lines. A long
    pause or a change of speaker always starts a new cue."""
    keep_segments = layout.max_line_width is None or layout.max_line_count is None
    width = layout.max_line_width or 1000
    per_line = None if layout.max_line_width else layout.max_words_per_line
    cues: list[Cue] = []
    lines: list[list[Word]] = []
    line: list[Word] = []

    def end_cue() -> None:
        nonlocal lines, line
        if line:
            lines.append(line)
        if lines:
            words = [w for ln in lines for w in ln]
            cues.append(
                Cue(words[0].start, words[-1].end, tuple(map(tuple, lines)), words[0].speaker)
            )
        lines, line = [], []

    for seg in t.segments:
        words = seg.words or (
            (Word(seg.start, seg.end, seg.text, 1.0, seg.speaker),) if seg.text.strip() else ()
        )
        if keep_segments:
            end_cue()
        for w in words:
            if line and (w.start - line[-1].end > PAUSE_SPLIT or w.speaker != line[-1].speaker):
                end_cue()
            too_wide = line and len(_line_text([*line, w])) > width
            too_many = line and per_line is not None and len(line) >= per_line
            if too_wide or too_many:
                lines.append(line)
                line = []
                if layout.max_line_count and len(lines) >= layout.max_line_count:
                    end_cue()
            line.append(w)
    end_cue()
    if layout.highlight_words:
        return [c for cue in cues for c in _highlighted(cue)]
    return cues


def _highlighted(cue: Cue) -> list[Cue]:
    """One cue per word, the word underlined, each shown until the next word starts."""
    words = [w for line in cue.lines for w in line]
    out = []
    for i, w in enumerate(words):
        until = words[i + 1].start if i + 1 < len(words) else cue.end
        out.append(Cue(w.start, max(until, w.end), cue.lines, cue.speaker, highlight=w))
    return out
