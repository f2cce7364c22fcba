"""The default path on short files: `wt transcribe FILE` at its defaults (base, faster engine,
beam 5, language detected) against `--engine openai` with the same model, and (optionally)
whisper.cpp (a checkout built by bench/build_whisper_cpp.sh), file by file.

  python bench/short_files.py [--model base] [--runs 3] [--whisper-cpp SRC]

Every recording of tests/data/speech (8 English, 1 Russian) is one job. Two measures:
- in process: one fresh process per way and round, the model loaded and warmed up first
  (not counted), then every file one by one (what a daemon worker spends);
- end to end: one process per file, start and model load included (what a user who runs
  `wt transcribe a.wav` waits for).
Ways alternate within each round; medians over rounds. WER is over the English files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median, speech, table

from whisper_cli.wer import normalize, word_errors


def corpus_wer(pairs: list[tuple[str, str]]) -> float:
    return sum(word_errors(r, h) for r, h in pairs) / sum(len(normalize(r)) for r, _ in pairs)


def in_process(engine: str, model: str, files: list[Path], told: bool) -> tuple:
    """Seconds for all files one by one in one fresh process (told: each file's language
    given, -l); the model is loaded and warmed up on the first file before the clock runs.
    A fresh process each time: two engines in one process run both OpenMP runtimes, and
    openai-whisper then decodes several times slower."""
    import json

    out = subprocess.run(
        [sys.executable, __file__, "--inner", engine, model, str(told), *map(str, files)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["wall"], result["texts"]


def inner(engine: str, model: str, told: bool, files: list[Path]) -> None:
    import json

    from whisper_cli.engines import load_engine
    from whisper_cli.options.transcribe_options import TranscribeOptions
    from whisper_cli.transcribe import transcribe_file

    def opts(f: Path) -> TranscribeOptions:
        language = ("ru" if "_ru" in f.name else "en") if told else None
        return TranscribeOptions(model=model, engine=engine, language=language)

    load_engine(opts(files[0]))
    transcribe_file(files[0], opts(files[0]))
    t0 = time.perf_counter()
    texts = [transcribe_file(f, opts(f))[0].text for f in files]
    print(json.dumps({"wall": time.perf_counter() - t0, "texts": texts}))


def end_to_end(cmd: list[str], files: list[Path], out: Path) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    texts = []
    for f in files:
        proc = subprocess.run([*cmd(f, out)], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        texts.append((out / f"{f.stem}.txt").read_text())
    return time.perf_counter() - t0, texts


def main() -> None:
    if sys.argv[1:2] == ["--inner"]:
        engine, model, told, *files = sys.argv[2:]
        inner(engine, model, told == "True", [Path(f) for f in files])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="base")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--whisper-cpp", type=Path, help="a whisper.cpp checkout, built: adds its row")
    args = ap.parse_args()
    en = speech("en")
    files = [f for f, _ in en] + [f for f, _ in speech("ru")]
    refs = [r for _, r in en]
    wt = str(Path(sys.executable).parent / "wt")
    tmp = Path(tempfile.mkdtemp())

    def wt_cmd(engine: str):
        return lambda f, out: [
            wt,
            "transcribe",
            str(f),
            "-m",
            args.model,
            "--engine",
            engine,
            "-f",
            "txt",
            "-q",
            "-o",
            str(out),
        ]

    ways: dict[str, object] = {
        "wt, faster (default)": ("in", "faster"),
        "wt --engine openai": ("in", "openai"),
        "wt, faster, -l given (no detection)": ("in-lang", "faster"),
        "wt, faster (default), process per file": ("e2e", wt_cmd("faster")),
        "wt --engine openai, process per file": ("e2e", wt_cmd("openai")),
    }
    if args.whisper_cpp:
        from whisper_cpp import binary, ggml_model

        src = args.whisper_cpp.resolve()
        cli, ggml = str(binary(src)), str(ggml_model(args.model, src))

        def cpp(f: Path, out: Path) -> list[str]:
            # Same beam and threads as wt; language detected; text written to out/stem.txt.
            return [
                cli,
                "-m",
                ggml,
                "-f",
                str(f),
                "-t",
                "2",
                "-bs",
                "5",
                "-bo",
                "5",
                "-l",
                "auto",
                "-otxt",
                "-of",
                str(out / f.stem),
                "-np",
            ]

        ways["whisper.cpp, process per file"] = ("e2e", cpp)
    walls: dict[str, list[float]] = {w: [] for w in ways}
    wers: dict[str, list[float]] = {w: [] for w in ways}
    for r in range(args.runs):
        for way, (kind, what) in ways.items():
            if kind in ("in", "in-lang"):
                wall, texts = in_process(what, args.model, files, told=kind == "in-lang")
            else:
                out = tmp / f"{abs(hash(way))}-{r}"
                out.mkdir(exist_ok=True)
                wall, texts = end_to_end(what, files, out)
            walls[way].append(wall)
            wers[way].append(corpus_wer(list(zip(refs, texts[: len(refs)]))))
            print(f"round {r + 1}: {way}: {wall:.2f} s, WER {wers[way][-1]:.3f}", flush=True)
    base_in = median(walls["wt --engine openai"])
    base_e2e = median(walls["wt --engine openai, process per file"])
    rows = []
    for way, (kind, _) in ways.items():
        t = median(walls[way])
        base = base_e2e if kind == "e2e" else base_in
        rows.append([way, t, t / len(files), base / t, median(wers[way])])
    table(
        f"Short files: {len(files)} real recordings (1.5-5 s), model {args.model}, beam 5, "
        f"{args.runs} rounds",
        ["how", "wall s (all files)", "s per file", "speed-up vs openai", "WER (English)"],
        rows,
        "Medians of rounds that alternate the ways. In process: a fresh process, the model "
        "loaded and warmed up first, not counted. Process per file: start, model load and "
        "writing included. Speed-up: against `--engine openai` measured the same way.",
        name=f"short_files-{args.model}",
    )


if __name__ == "__main__":
    main()
