"""Shared test helpers: the real speech recordings, a `wt` runner, and audio makers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# The real recordings travel with the repo (sources and licenses in their MANIFEST.json).
SPEECH = Path(os.environ.get("WT_TEST_SPEECH", ROOT / "tests" / "data" / "speech"))
SR = 16000
# The bundled sample `make demo` transcribes: a recording too, with its reference text.
SAMPLE = (
    ROOT / "samples" / "arctic_a0003.wav",
    (ROOT / "samples" / "arctic_a0003.txt").read_text().strip(),
)


# `make test` and CI never skip silently: a test that cannot run its real part (recording,
# model, espeak-ng, sox, root for a tmpfs) fails and says what is missing. A partial run is
# asked for explicitly with WT_TEST_ALLOW_SKIP=1.
ALLOW_SKIP = os.environ.get("WT_TEST_ALLOW_SKIP") == "1"
PARTIAL_HINT = "(to run the rest anyway, ask for a partial run: WT_TEST_ALLOW_SKIP=1)"


def _skip_reason(longrepr: object) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.skipped and not ALLOW_SKIP and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"could not run: {_skip_reason(report.longrepr)} {PARTIAL_HINT}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    if report.skipped and not ALLOW_SKIP:
        report.outcome = "failed"
        report.longrepr = f"could not run: {_skip_reason(report.longrepr)} {PARTIAL_HINT}"


def speech_files(lang: str = "en") -> list[tuple[Path, str]]:
    """(wav, reference text) pairs of the real recordings in the given language."""
    manifest = SPEECH / "MANIFEST.json"
    if not manifest.is_file():
        pytest.fail(
            f"real speech recordings not found at {SPEECH} (MANIFEST.json missing): "
            "restore tests/data/speech from git, or point WT_TEST_SPEECH at a copy"
        )
    entries = json.loads(manifest.read_text())
    return [
        (SPEECH / e["file"], (SPEECH / f"{e['name']}.txt").read_text().strip())
        for e in entries
        if e["lang"] == lang
    ]


def run_wt(
    *args: str | Path, cwd: Path | None = None, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WT_MODEL": "tiny.en", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "whisper_cli", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_wav(path: Path) -> np.ndarray:
    from whisper_cli.audio.decode import decode

    return decode(path)


def encode(
    samples: np.ndarray,
    path: Path,
    codec: str | None = None,
    video: bool = False,
    audio: bool = True,
) -> Path:
    """Write mono float samples at 16 kHz to any container PyAV can mux."""
    import av

    codec = (
        codec
        or {
            ".mp3": "mp3",
            ".flac": "flac",
            ".m4a": "aac",
            ".ogg": "libopus",
            ".opus": "libopus",
            ".webm": "libopus",
            ".mkv": "aac",
            ".mp4": "aac",
            ".wav": "pcm_s16le",
        }[path.suffix]
    )
    rate = 48000 if codec == "libopus" else (SR if codec in ("pcm_s16le", "flac") else 44100)
    with av.open(str(path), "w") as out:
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=10)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        if audio:
            astream = out.add_stream(codec, rate=rate)
            astream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(
                (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :],
                format="s16",
                layout="mono",
            )
            frame.sample_rate = SR
            frame.time_base = Fraction(1, SR)
            resampler = av.AudioResampler(format=astream.format.name, layout="mono", rate=rate)
            for rf in resampler.resample(frame) + resampler.resample(None):
                for packet in _chunked_encode(astream, rf):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
        if vstream is not None:
            seconds = max(1, int(len(samples) / SR))
            for i in range(seconds * 10):
                img = av.VideoFrame.from_ndarray(
                    np.full((48, 64, 3), i % 255, dtype=np.uint8), format="rgb24"
                )
                img.pts = i
                for packet in vstream.encode(img):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
    return path


def _chunked_encode(stream, frame):
    # Encoders with a fixed frame size (aac, mp3, opus) need frames of that size.
    import av

    size = stream.codec_context.frame_size or frame.samples
    data = frame.to_ndarray()
    packets = []
    pts = 0
    for start in range(0, frame.samples, size):
        part = data[:, start : start + size]
        f = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(part), format=frame.format.name, layout="mono"
        )
        f.sample_rate = frame.sample_rate
        f.pts = pts
        f.time_base = Fraction(1, frame.sample_rate)
        pts += f.samples
        packets.extend(stream.encode(f))
    return packets


def espeak(text: str, path: Path) -> Path:
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng, or make test as root)")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture
def english_wav() -> tuple[Path, str]:
    return speech_files("en")[0]


class DaemonProcess:
    """A real `wt daemon` in a subprocess, with helpers to read its spool."""

    def __init__(
        self, spool: Path, *args: str, env: dict | None = None, prefix: list[str] | None = None
    ) -> None:
        self.spool, self.args, self.env = spool, args, env or {}
        self.prefix = prefix or []  # e.g. setpriv, to run it as another user
        self.proc: subprocess.Popen | None = None
        self.log = spool.parent / f"daemon-{spool.name}-{id(self)}.log"

    def start(self) -> DaemonProcess:
        import time

        full_env = {**os.environ, "WT_MODEL": "tiny.en", "COLUMNS": "200", **self.env}
        self.logfh = open(self.log, "ab")  # noqa: SIM115 (lives as long as the daemon)
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "whisper_cli",
                "daemon",
                "--spool",
                str(self.spool),
                "--settle",
                "0.5",
                "--beam-size",
                "1",
                *self.args,
            ],
            env=full_env,
            stdout=self.logfh,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # ready once it has a heartbeat and a worker
            beats = list((self.spool / "daemons").glob("*.json"))
            if (
                any(
                    json.loads(b.read_text()).get("pid") == self.proc.pid
                    for b in beats
                    if b.stat().st_size
                )
                and "started" in self.log.read_text()
            ):
                return self
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError("daemon did not start: " + self.log.read_text())

    def stop(self, sig: int = 15, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def drop(self, src: Path, name: str, sidecar: dict | None = None) -> Path:
        """Deliver atomically as a well-behaved producer does: write a dot-file, rename."""
        inbox = self.spool / "inbox"
        if sidecar is not None:
            tmp = inbox / f".{name}.json.tmp"
            tmp.write_text(json.dumps(sidecar))
            os.rename(tmp, inbox / (name + ".json"))
        tmp = inbox / f".{name}.tmp"
        shutil.copyfile(src, tmp)
        os.rename(tmp, inbox / name)
        return inbox / name

    def jobs(self) -> list[dict]:
        out = []
        for d in sorted((self.spool / "jobs").iterdir()):
            try:
                out.append(json.loads((d / "status.json").read_text()))
            except FileNotFoundError:
                continue
        return out

    def job_by_input(self, name: str) -> dict | None:
        matches = [j for j in self.jobs() if j["input"]["name"] == name]
        assert len(matches) <= 1, matches
        return matches[0] if matches else None

    def wait_for(self, predicate, timeout: float = 120, interval: float = 0.05, alive: bool = True):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if alive:
                assert self.proc is None or self.proc.poll() is None, self.log.read_text()
            time.sleep(interval)
        raise AssertionError(f"timed out; jobs={self.jobs()}\nlog:\n{self.log.read_text()}")

    def wait_state(
        self, name: str, states: tuple[str, ...] = ("completed", "failed", "canceled"), timeout=120
    ):
        return self.wait_for(
            lambda: (j := self.job_by_input(name)) and j["state"] in states and j, timeout
        )


@pytest.fixture
def small_disk(tmp_path):
    """A 12 MB tmpfs, to fill up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], capture_output=True
    )
    if made.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path, leave: int = 0) -> None:
    """Fill the filesystem of `path` with one file, then free `leave` bytes of it."""
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
        fh.truncate(max(0, os.fstat(fh.fileno()).st_size - leave))


@pytest.fixture(scope="session")
def long_wav(tmp_path_factory) -> Path:
    """150 s of real speech (the recordings repeated), for jobs that run a while."""
    return encode(long_speech(150), tmp_path_factory.mktemp("audio") / "long.wav")


def busy_daemon_on(disk: Path, daemon_factory, long_wav: Path) -> DaemonProcess:
    """A daemon whose spool is on `disk`, in the middle of transcribing a long recording."""
    spool = disk / "spool"
    spool.mkdir()
    d = daemon_factory(spool=spool)
    d.drop(long_wav, "long.wav")
    d.wait_state("long.wav", ("processing",), timeout=60)
    return d


def as_user(uid: int, gid: int, groups: tuple[int, ...] = ()) -> list[str]:
    """A command prefix that runs what follows as another user (the tests run as root, whom
    no permission stops, so sharing between users can only be tested by switching)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.fail("running processes as other users needs root and setpriv (util-linux)")
    extra = [f"--groups={','.join(map(str, groups))}"] if groups else ["--clear-groups"]
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", *extra]


@pytest.fixture
def open_dir():
    """A folder every user can enter (pytest's tmp_path is private to root)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="wt-perm-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def spool_dir(tmp_path) -> Path:
    d = tmp_path / "spool"
    d.mkdir()
    return d


@pytest.fixture
def daemon_factory(spool_dir):
    started: list[DaemonProcess] = []

    def make(
        *args: str,
        spool: Path | None = None,
        env: dict | None = None,
        prefix: list[str] | None = None,
    ) -> DaemonProcess:
        d = DaemonProcess(spool or spool_dir, *args, env=env, prefix=prefix).start()
        started.append(d)
        return d

    yield make
    for d in started:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


def long_speech(seconds: float, with_text: bool = False):
    """Real recordings joined with half-second pauses, up to the given length (whole
    recordings only when with_text, which also returns the reference text)."""
    import itertools

    clips = [(read_wav(f), ref) for f, ref in speech_files("en")]
    out, refs, total = [], [], 0
    for c, ref in itertools.cycle(clips):
        if total >= seconds * SR or (with_text and total + len(c) > seconds * SR):
            break
        out += [c, np.zeros(SR // 2, np.float32)]
        refs.append(ref)
        total += len(c) + SR // 2
    audio = np.concatenate(out)
    if with_text:
        return audio, " ".join(refs)
    return audio[: int(seconds * SR)]


# ---- a real `wt serve` ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `wt serve` process on 127.0.0.1."""

    def __init__(self, spool: Path, *args: str, env: dict[str, str] | None = None) -> None:
        import httpx

        self.spool = spool
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = spool.parent / f"serve-{self.port}.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "whisper_cli",
                "serve",
                "--spool",
                str(spool),
                "--port",
                str(self.port),
                *args,
            ],  # fmt: skip
            stdout=open(self.log, "wb"),  # noqa: SIM115 (lives as long as the server)
            stderr=subprocess.STDOUT,
            env={**os.environ, "WT_API_KEY": "", **(env or {})},
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/", timeout=1)
                return
            except httpx.TransportError:
                assert self.proc.poll() is None, self.log.read_text()
                time.sleep(0.1)
        raise AssertionError("server did not start: " + self.log.read_text())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


@pytest.fixture
def server_factory(spool_dir):
    started: list[Server] = []

    def make(*args: str, spool: Path | None = None, env: dict[str, str] | None = None) -> Server:
        (spool or spool_dir).mkdir(exist_ok=True)
        from spool.layout import Layout

        Layout(spool or spool_dir).ensure()
        server = Server(spool or spool_dir, *args, env=env)
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()
