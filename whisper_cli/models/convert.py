"""Convert a CTranslate2 Whisper model (model.bin + config.json) into an openai-whisper checkpoint.

The CTranslate2 file (format version 6, spec WhisperSpec), little-endian:
  uint32 version; string spec name; uint32 revision; uint32 variable count;
  per variable: string name, uint8 rank, uint32 dims[rank], uint8 dtype, uint32 byte count, bytes;
  uint32 alias count; (string alias, string target) pairs.
A string is a uint16 length counting a trailing NUL, then the bytes and the NUL.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from whisper_cli.errors import ModelUnavailable

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BF16 = 5


class CorruptModel(ModelUnavailable):
    pass


@dataclass(frozen=True)
class Ct2Model:
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def read_ct2(path: Path) -> Ct2Model:
    """Parse model.bin; arrays are views on a private memory map (no copy until used)."""
    try:
        with open(path, "rb") as fh:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError) as exc:
        raise CorruptModel(f"{path}: cannot read model ({exc})", "check the path") from None
    pos = 0

    def take(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(buf):
            raise CorruptModel(
                f"{path}: truncated CTranslate2 model (needs {pos + n} bytes, has {len(buf)})",
                "the file is incomplete; reinstall or re-download the model",
            )
        view = memoryview(buf)[pos : pos + n]
        pos += n
        return view

    def u32() -> int:
        return struct.unpack("<I", take(4))[0]

    def string() -> str:
        n = struct.unpack("<H", take(2))[0]
        raw = bytes(take(n))
        if not raw.endswith(b"\0"):
            raise CorruptModel(
                f"{path}: corrupt CTranslate2 model (bad string at {pos})",
                "reinstall or re-download the model",
            )
        return raw[:-1].decode("utf-8", "replace")

    version = u32()
    if version != 6:
        raise CorruptModel(
            f"{path}: unsupported CTranslate2 model format version {version}",
            "only format version 6 can be converted",
        )
    spec = string()
    if spec != "WhisperSpec":
        raise CorruptModel(
            f"{path}: not a Whisper model (spec {spec!r})", "give a CTranslate2 Whisper model"
        )
    u32()  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(u32()):
        name = string()
        rank = take(1)[0]
        dims = [u32() for _ in range(rank)]
        dtype = take(1)[0]
        nbytes = u32()
        raw = take(nbytes)
        if dtype == _BF16:
            as_u16 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = as_u16.view(np.float32)
        elif dtype in _DTYPES:
            array = np.frombuffer(raw, dtype=_DTYPES[dtype])
        else:
            raise CorruptModel(
                f"{path}: unknown dtype {dtype} for {name}", "reinstall or re-download the model"
            )
        if array.size != int(np.prod(dims)):
            raise CorruptModel(
                f"{path}: variable {name} has {array.size} values for shape {dims}",
                "the file is corrupt; reinstall the model",
            )
        variables[name] = array.reshape(dims)
    aliases = {string(): string() for _ in range(u32())}
    return Ct2Model(variables, aliases)


def _weight(m: Ct2Model, name: str) -> np.ndarray:
    name = m.aliases.get(name, name)
    w = m.variables[name]
    scale_name = name.rsplit("/", 1)[0] + "/weight_scale"
    if w.dtype in (np.int8, np.int16) and scale_name in m.variables:
        # CTranslate2 quantizes per output row: q = round(w * scale).
        scale = m.variables[scale_name].astype(np.float32)
        return w.astype(np.float32) / scale.reshape(-1, *([1] * (w.ndim - 1)))
    return w


def _count_layers(m: Ct2Model, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return 1 + max(int(x.group(1)) for k in m.variables if (x := pattern.match(k)))


def to_openai_state(m: Ct2Model) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Map CTranslate2 variables to openai-whisper's state_dict names; returns (state, dims)."""
    v = m.variables
    state: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def put(dst: str, src: str, array: np.ndarray | None = None) -> None:
        state[dst] = _weight(m, src) if array is None else array
        used.add(m.aliases.get(src, src))
        used.add(src.rsplit("/", 1)[0] + "/weight_scale")

    def linear(dst: str, src: str, bias: bool = True) -> None:
        put(f"{dst}.weight", f"{src}/weight")
        if bias:
            put(f"{dst}.bias", f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", f"{src}/gamma")
        put(f"{dst}.bias", f"{src}/beta")

    def fused(dst: str, src: str, names: tuple[str, ...]) -> None:
        weight = _weight(m, f"{src}/weight")
        bias = _weight(m, f"{src}/bias")
        used.update({f"{src}/weight", f"{src}/bias", f"{src}/weight_scale"})
        for name, w, b in zip(names, np.split(weight, len(names)), np.split(bias, len(names))):
            state[f"{dst}.{name}.weight"] = w
            if name != "key":  # openai-whisper's key projection has no bias (CT2 stores zeros)
                state[f"{dst}.{name}.bias"] = b

    put("encoder.conv1.weight", "encoder/conv1/weight")
    put("encoder.conv1.bias", "encoder/conv1/bias")
    put("encoder.conv2.weight", "encoder/conv2/weight")
    put("encoder.conv2.bias", "encoder/conv2/bias")
    put("encoder.positional_embedding", "encoder/position_encodings/encodings")
    n_audio_layer = _count_layers(m, "encoder")
    for i in range(n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        fused(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.token_embedding.weight", "decoder/embeddings/weight")
    put("decoder.positional_embedding", "decoder/position_encodings/encodings")
    n_text_layer = _count_layers(m, "decoder")
    for i in range(n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        fused(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"))
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        fused(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"))
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
    norm("decoder.ln", "decoder/layer_norm")

    # Every tensor must be used: a variable we do not map means a spec we do not understand.
    leftover = sorted(k for k in v if k not in used and v[k].ndim > 0)
    if leftover:
        raise CorruptModel(
            f"unexpected variables in model: {', '.join(leftover[:5])}",
            "this CTranslate2 Whisper variant is not supported for conversion",
        )
    dims = {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(_weight(m, "decoder/embeddings/weight").shape[0]),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(_weight(m, "decoder/embeddings/weight").shape[1]),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }
    return state, dims


def convert(src_dir: Path, out_path: Path, source_name: str = "") -> Path:
    """Write an openai-whisper checkpoint for the CTranslate2 model in src_dir."""
    import torch

    model_bin = src_dir / "model.bin"
    if not model_bin.is_file():
        raise ModelUnavailable(f"{src_dir}: no model.bin", "give a CTranslate2 model directory")
    state, dims = to_openai_state(read_ct2(model_bin))
    config_path = src_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    checkpoint = {
        "dims": dims,
        "model_state_dict": {
            k: torch.from_numpy(
                np.array(a, dtype=np.float16 if a.dtype != np.float32 else np.float32)
            )
            for k, a in state.items()
        },
        # Read back by wt's openai engine; without them word timestamps use the wrong heads.
        "alignment_heads": [list(map(int, pair)) for pair in config.get("alignment_heads", [])],
        "source": source_name or str(src_dir),
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def cached_conversion(src_dir: Path, cache: Path, source_name: str) -> Path:
    """Convert once per distinct model.bin content; later calls reuse the checkpoint."""
    from filelock import FileLock

    stat = (src_dir / "model.bin").stat()
    # Hashing 150 MB costs ~0.3 s: remember the hash per (path, size, mtime).
    index_key = hashlib.sha256(
        f"{(src_dir / 'model.bin').resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()[:32]
    cache.mkdir(parents=True, exist_ok=True)
    index = cache / f"{index_key}.src"
    sha = index.read_text().strip() if index.is_file() else file_sha256(src_dir / "model.bin")
    out = cache / f"{sha[:16]}.pt"
    with FileLock(str(out) + ".lock", timeout=900):
        if not out.is_file():
            convert(src_dir, out, source_name)
            meta = {"source_name": source_name, "source_path": str(src_dir), "sha256": sha}
            out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    if not index.is_file():
        index.write_text(sha + "\n")
    return out
