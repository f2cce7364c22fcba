"""Short clips of several jobs packed into one window (whisper_cli/engines/packing.py): each job
gets exactly its own words, in its own time, and no word of another job."""

from __future__ import annotations

import threading

import numpy as np
from conftest import speech_files

from whisper_cli.audio.decode import decode
from whisper_cli.engines import packing
from whisper_cli.engines.batching import Gatherer
from whisper_cli.options.transcribe_options import TranscribeOptions
from whisper_cli.output.result import Segment, Word
from whisper_cli.wer import error_counts, normalize, wer

SR = 16000
# Deterministic decoding: accuracy is judged on the same decoding every run.
OPTIONS = TranscribeOptions(model="tiny.en", temperature_increment_on_fallback=0, beam_size=5)


def test_clips_fill_as_few_windows_as_fit():
    clips = [np.ones(int(s * SR), np.float32) for s in (11.0, 18.0, 9.0, 9.0)]
    # In arrival order three windows (11 | 18 + 9 | 9); longest first, two: 18 + 9, 11 + 9.
    windows = packing.pack(clips)
    assert [w.members for w in windows] == [(1, 2), (0, 3)]
    assert windows[0].spans == ((0.0, 18.0), (19.0, 28.0))
    assert [w.members for w in packing.pack(clips, per_window=1)] == [(1,), (0,), (2,), (3,)]


def test_clips_are_packed_in_order_with_gaps_and_split_back_in_their_own_time():
    clips = [np.ones(int(s * SR), np.float32) for s in (5.0, 8.0, 10.0, 9.0)]
    windows = packing.pack(clips[:3])
    assert [w.members for w in windows] == [(0, 1, 2)]  # 5 + 1 + 8 + 1 + 10 = 25 s
    assert windows[0].spans == ((0.0, 5.0), (6.0, 14.0), (15.0, 25.0))
    assert windows[0].audio.size == 25 * SR
    assert [w.members for w in packing.pack(clips)] == [(0, 2, 3), (1,)]

    def word(text: str, start: float, end: float) -> Word:
        return Word(start, end, text, 0.9)

    # One segment runs across the gap between clips 0 and 1: it is cut there.
    across = Segment(0, 3.0, 8.0, " a b c", -0.1, 0.0, 1.0, 0.0,
                     (word(" a", 3.0, 4.0), word(" b", 4.2, 4.8), word(" c", 6.5, 7.5)),
                     seek=0, tokens=(1, 2, 3))  # fmt: skip
    inside = Segment(1, 15.5, 17.0, " d", -0.1, 0.0, 1.0, 0.0, (word(" d", 15.5, 17.0),))
    own = packing.split([across, inside], windows[0], keep_words=True)
    assert [s.text for s in own[0]] == [" a b"] and own[0][0].tokens == ()
    assert (own[0][0].start, own[0][0].end) == (3.0, 4.8)
    assert [s.text for s in own[1]] == [" c"] and (own[1][0].start, own[1][0].end) == (0.5, 1.5)
    assert [s.text for s in own[2]] == [" d"] and own[2][0].words[0].start == 0.5
    assert [s.id for s in own[0]] == [0]


def test_only_short_clips_with_a_known_language_and_window_options_are_packed():
    assert packing.packable(5.0, OPTIONS, multilingual=False)
    assert not packing.packable(20.0, OPTIONS, multilingual=False)  # fills a window alone
    base = TranscribeOptions(model="base")
    assert not packing.packable(5.0, base, multilingual=True)  # language to detect
    assert packing.packable(5.0, TranscribeOptions(model="base", language="en"), True)
    for other in ({"vad": True}, {"hallucination_silence_threshold": 2.0}, {"batch_size": 4}):
        options = TranscribeOptions(model="tiny.en", **other)
        assert not packing.packable(5.0, options, multilingual=False), other


def _transcribe_side_by_side(paths, gatherer: Gatherer) -> list:
    from whisper_cli.transcribe import transcribe_file

    results: list = [None] * len(paths)
    ready = threading.Barrier(len(paths))

    def job(i: int) -> None:
        with gatherer.member():
            ready.wait()
            results[i] = transcribe_file(paths[i], OPTIONS)[0]

    threads = [threading.Thread(target=job, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def test_jobs_packed_into_one_window_each_get_their_own_words():
    """Four real recordings with different sentences, decoded side by side in one packed
    window: every job's text is its own sentence (as accurate as alone, within a word), no
    word of another sentence leaks in, and its times lie inside its own audio."""
    from whisper_cli.transcribe import transcribe_file

    chosen = speech_files("en")[:4]
    paths = [p for p, _ in chosen]
    gatherer = Gatherer(max_wait=30.0, pack=True)
    packed = _transcribe_side_by_side(paths, gatherer)
    assert gatherer.merged_calls >= 1 and gatherer.largest == 4  # all four in one pack
    for (path, reference), t in zip(chosen, packed, strict=True):
        alone = transcribe_file(path, OPTIONS)[0]
        duration = decode(path).size / SR
        assert wer(reference, t.text) <= wer(reference, alone.text) + 1 / len(reference.split())
        others = {w for _, ref in chosen if ref != reference for w in normalize(ref)}
        leaked = set(normalize(t.text)) - set(normalize(reference)) & others
        assert len(leaked) <= 1, (t.text, leaked)  # a misheard word may exist elsewhere
        assert t.segments and all(0 <= s.start <= s.end <= duration + 0.01 for s in t.segments)
        assert t.language == "en" and t.duration == round(duration, 3)


def test_every_sentence_of_every_packed_job_is_heard(tmp_path):
    """Clips of two sentences each, packed by pairs: Whisper may end a packed window at a
    change of voice and drop the sentences after it; the speech no segment covers is decoded
    once more, so each job still gets every one of its sentences."""
    from conftest import encode

    recordings = {p.stem: (decode(p), ref) for p, ref in speech_files("en")}
    pause = np.zeros(SR // 4, np.float32)
    pairs = [
        ("arctic_axb_a0006", "arctic_axb_a0004"),
        ("ds_ldc93s1", "ds_ldc93s1"),
        ("arctic_aew_a0003", "ds_ldc93s1"),
        ("arctic_aew_a0002", "arctic_aew_a0002"),
    ]
    paths, sentences = [], []
    for i, (a, b) in enumerate(pairs):
        audio = np.concatenate([recordings[a][0], pause, recordings[b][0], pause])
        paths.append(encode(audio, tmp_path / f"clip{i}.wav"))
        sentences.append((recordings[a][1], recordings[b][1]))
    for pair in (paths[:2], paths[2:]):
        gatherer = Gatherer(max_wait=30.0, pack=True)
        results = _transcribe_side_by_side(pair, gatherer)
        assert gatherer.largest == 2
        for path, t in zip(pair, results, strict=True):
            first, second = sentences[paths.index(path)]
            # A dropped sentence leaves 8 or more words missing; a misheard name, one or two.
            missing = error_counts(first + " " + second, t.text).deletions
            assert missing <= 2, (path.name, t.text)


def test_a_packing_daemon_gives_each_dropped_clip_its_own_text(daemon_factory):
    """`wt daemon --pack` end to end: clips dropped together come back each with its own
    sentence (the daemon, its worker and the gatherer wired to pack)."""
    d = daemon_factory("--max-batch", "4", "--pack", "--temperature-increment-on-fallback", "0")
    chosen = speech_files("en")[:3]
    for path, _ in chosen:
        d.drop(path, path.name)
    for path, reference in chosen:
        job = d.wait_state(path.name)
        assert job["state"] == "completed", job
        text = (d.spool / "jobs" / job["job_id"] / "result.txt").read_text()
        assert wer(reference, text) <= 0.4, (path.name, text)
        others = {w for p, ref in chosen if p != path for w in normalize(ref)}
        assert len(set(normalize(text)) - set(normalize(reference)) & others) <= 1, text


def test_clips_that_repeat_each_other_in_one_pack_each_keep_all_their_words(tmp_path):
    """Six clips, some saying what another says, all in one pack: Whisper jumps over speech
    it has just heard in the same window, and word timings then drift across the gaps. Every
    clip still gets every sentence it says (the model's timestamps pin a segment to its clip;
    speech left unheard is decoded again, at last alone) and no sentence it does not say."""
    from conftest import encode

    recordings = {p.stem: (decode(p), ref) for p, ref in speech_files("en")}
    pause = np.zeros(SR // 4, np.float32)
    a, b, c, d = "arctic_aew_a0001", "arctic_axb_a0004", "ds_ldc93s1", "arctic_aew_a0003"
    plans = [(a, b), (a,), (b, a), (c, c), (d,), (c, d)]
    paths = []
    for i, plan in enumerate(plans):
        audio = np.concatenate([part for name in plan for part in (recordings[name][0], pause)])
        paths.append(encode(audio, tmp_path / f"clip{i}.wav"))
    gatherer = Gatherer(max_wait=30.0, pack=True)
    results = _transcribe_side_by_side(paths, gatherer)
    assert gatherer.largest == len(plans)  # all in one pack
    for plan, t in zip(plans, results, strict=True):
        reference = " ".join(recordings[name][1] for name in plan)
        counts = error_counts(reference, t.text)
        # A sentence lost or taken from a neighbour is 6 words or more; a misheard name, 1-2.
        assert counts.deletions <= 2 and counts.insertions <= 2, (plan, t.text)


def test_a_segment_stays_in_the_clip_whose_time_the_model_gave_it():
    """Word timings can drift across a gap (seen when the model skipped a clip: a word of
    one job aligned into the next job's audio); the model's own timestamps say where it heard
    the segment, and its words are kept inside that clip. A segment the model itself ran
    across two clips is left to be split by word timings."""
    from whisper_cli.engines.packed import pin

    spans = [(0.0, 4.0), (5.0, 9.0)]
    drifted = {
        "start": 3.2,
        "end": 7.0,
        "words": [{"start": 3.2, "end": 4.6}, {"start": 4.6, "end": 7.0}],
    }
    pin(drifted, (5.1, 7.2), spans)  # heard in clip 1
    assert [(w["start"], w["end"]) for w in drifted["words"]] == [(5.0, 5.0), (5.0, 7.0)]
    assert (drifted["start"], drifted["end"]) == (5.0, 7.0)
    across = {
        "start": 2.0,
        "end": 7.0,
        "words": [{"start": 2.0, "end": 3.5}, {"start": 6, "end": 7}],
    }
    pin(across, (2.0, 7.0), spans)  # heard across both: untouched
    assert across["words"][0] == {"start": 2.0, "end": 3.5} and across["start"] == 2.0


def test_speech_is_looked_for_only_where_segments_leave_a_second_uncovered():
    from whisper_cli.engines.faster import uncovered

    clip = np.zeros(6 * SR, np.float32)

    def seg(start: float, end: float) -> Segment:
        return Segment(0, start, end, " x", -0.1, 0.0, 1.0, 0.0)

    assert not uncovered(clip, [seg(0.4, 2.5), seg(2.9, 5.5)])  # gaps under 1 s everywhere
    assert uncovered(clip, [seg(0.4, 2.5), seg(3.6, 5.5)])  # 1.1 s in the middle
    assert uncovered(clip, [seg(0.4, 4.9)])  # the last 1.1 s
    assert uncovered(clip, [])


def test_a_pack_computes_word_timings_only_when_one_of_its_jobs_needs_them():
    """Word timings cost about a tenth of a pack's time: a pack computes them only when one
    of its jobs needs them, and then the words lie inside each job's own audio (a job that
    did not ask has them dropped afterwards, as outside a pack)."""
    import dataclasses

    from whisper_cli.engines import load_engine

    chosen = speech_files("en")[:3]
    clips = [decode(p) for p, _ in chosen]
    engine = load_engine(OPTIONS)
    with_words = dataclasses.replace(OPTIONS, word_timestamps=True)
    for asks in ((False, False, False), (False, True, False)):
        calls = [(c, with_words if a else OPTIONS) for c, a in zip(clips, asks, strict=True)]
        out = engine._transcribe_packed(calls)
        for clip, segments, (_, reference) in zip(clips, out, chosen, strict=True):
            alone = engine.transcribe(clip, OPTIONS).text
            slack = 2 / len(reference.split())  # a misheard name; a lost sentence is far more
            text = " ".join(s.text for s in segments)
            assert wer(reference, text) <= wer(reference, alone) + slack, (text, alone)
            words = [w for s in segments for w in (s.words or ())]
            if any(asks):
                assert words and all(0 <= w.start <= w.end <= clip.size / SR for w in words)
            else:
                assert not words
