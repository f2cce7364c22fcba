"""Word error rate with the normalisation the tests and benchmarks state.

Normalisation: lower case, punctuation removed (apostrophes inside words kept), whitespace
collapsed, numbers 0-99 and
ordinals (20th) spelled out so "20" and "twenty" agree, English contractions spelled out
("I'm" and "I am" agree).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])


_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _ordinal_words(n: int) -> str:
    words = _number_words(n).split()
    last = words[-1]
    if last in _ORDINAL:
        words[-1] = _ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def normalize(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("ё", "е")
    text = re.sub(r"\b(\d{1,2})(st|nd|rd|th)\b", lambda m: _ordinal_words(int(m.group(1))), text)
    text = re.sub(r"\b\d{1,2}\b", lambda m: _number_words(int(m.group())), text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    text = "".join(ch if ch.isalnum() or ch in " '" else " " for ch in text)
    for pattern, spelled in _CONTRACTIONS:
        text = re.sub(pattern, spelled, text)
    return text.split()


# English contractions spelled out, as Whisper's English normaliser does, so "I'm" and "I am"
# (both right, and both common in transcripts of the same speech) agree.
_CONTRACTIONS = [
    (r"\bwon't\b", "will not"),
    (r"\bcan't\b", "can not"),
    (r"\blet's\b", "let us"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'ll\b", " will"),
    (r"'ve\b", " have"),
    (r"'m\b", " am"),
]


def wer(reference: str, hypothesis: str) -> float:
    ref = normalize(reference)
    if not ref:
        return 0.0 if not normalize(hypothesis) else 1.0
    return word_errors(reference, hypothesis) / len(ref)


def word_errors(reference: str, hypothesis: str) -> int:
    """Levenshtein distance in words (substitutions + deletions + insertions)."""
    return error_counts(reference, hypothesis).total


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0  # reference words the hypothesis lost
    insertions: int = 0  # words the hypothesis added

    @property
    def total(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


def error_counts(reference: str, hypothesis: str) -> ErrorCounts:
    """The word edits of a minimal alignment, by kind (fewest edits, then fewest
    insertions: an added word is the error a repeated sentence makes)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    # Each cell: (edits, insertions, substitutions, deletions) of the best alignment so far.
    prev = [(j, j, 0, 0) for j in range(len(hyp) + 1)]
    for i, r in enumerate(ref, 1):
        cur = [(i, 0, 0, i)]
        for j, h in enumerate(hyp, 1):
            e, ins, sub, dele = prev[j - 1]
            diagonal = (e + (r != h), ins, sub + (r != h), dele)
            e, ins, sub, dele = prev[j]
            deletion = (e + 1, ins, sub, dele + 1)
            e, ins, sub, dele = cur[j - 1]
            insertion = (e + 1, ins + 1, sub, dele)
            cur.append(min(diagonal, deletion, insertion))
        prev = cur
    _, ins, sub, dele = prev[-1]
    return ErrorCounts(sub, dele, ins)


def longest_insertion_run(reference: str, hypothesis: str) -> int:
    """The most hypothesis words in a row that a minimal alignment marks as inserted: a
    repetition loop or invented passage shows as a long run, scattered slips as short ones."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    n, m = len(ref), len(hyp)
    # cost[i][j]: edits to turn ref[:i] into hyp[:j]; walked back from the end.
    cost = [list(range(m + 1))]
    for i in range(1, n + 1):
        row = [i] + [0] * m
        for j in range(1, m + 1):
            row[j] = min(
                cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]),
                cost[i - 1][j] + 1,
                row[j - 1] + 1,
            )
        cost.append(row)
    i, j, run, longest = n, m, 0, 0
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j, run = i - 1, j - 1, 0
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            i, run = i - 1, 0
        else:
            j, run = j - 1, run + 1
            longest = max(longest, run)
    return longest
