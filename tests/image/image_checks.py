"""The Docker image and docker-compose.yml, end to end: `make image-test`.

Builds the image, starts the shipped compose file with 3 daemon replicas and the HTTP door
(running as another user), and checks what a deployment relies on. Needs a Docker engine and
compose (v2 plugin or v1 docker-compose); fails, saying so, without them. Not part of
`make test` (it needs Docker); .ci/run runs it where Docker can run.

Environment: WT_IMAGE_BASE (default debian:bookworm-slim; local/debian:bookworm where no
registry is reachable), WT_TORCH_INDEX (default auto; "pip" to use pip's configured mirror).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import tomllib
import yaml
from conftest import ROOT, encode, free_port, long_speech, speech_files

from whisper_cli.wer import wer

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"wt:{VERSION}"
BASE = os.environ.get("WT_IMAGE_BASE", "debian:bookworm-slim")
TORCH_INDEX = os.environ.get("WT_TORCH_INDEX", "auto")
REPLICAS = 3


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {proc.stderr[-3000:]}")
    return proc


def compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("docker compose is not installed (the v2 plugin, or Debian's docker-compose)")


def build(tag: str, *build_args: str) -> str:
    if not shutil.which("docker") or docker("info", check=False).returncode != 0:
        pytest.fail(
            "the image test needs a running Docker engine (docker info fails); on this "
            "project's machines run ../shared/docker/setup.sh as root first"
        )
    started = time.monotonic()
    built = docker(
        "build",
        "--network", "host",
        "--build-arg", f"BASE={BASE}",
        "--build-arg", f"TORCH_INDEX={TORCH_INDEX}",
        *build_args,
        "-t", tag,
        str(ROOT),
        check=False,
        timeout=3600,
    )  # fmt: skip
    if built.returncode != 0:
        hint = (
            " (no image registry reachable: build on a local base, e.g. "
            "WT_IMAGE_BASE=local/debian:bookworm WT_TORCH_INDEX=pip after "
            "../shared/docker/setup.sh)"
            if "registry" in built.stderr or "no such host" in built.stderr
            else ""
        )
        pytest.fail(f"docker build failed{hint}:\n{built.stderr[-3000:]}")
    size = int(docker("image", "inspect", tag, "--format", "{{.Size}}").stdout)
    print(f"\n{tag}: built in {time.monotonic() - started:.0f} s, {size / 1e9:.2f} GB")
    return tag


@pytest.fixture(scope="module")
def image() -> str:
    """The default CPU image: faster-whisper and --diarize on onnxruntime, no torch."""
    return build(IMAGE)


@pytest.fixture(scope="module")
def openai_image() -> str:
    """The CPU image with the openai engine (torch): ENGINES=all."""
    return build(f"{IMAGE}-openai", "--build-arg", "ENGINES=all")


class Stack:
    """The shipped docker-compose.yml, up, under its own project name."""

    def __init__(self, workdir: Path) -> None:
        self.project = f"wtimage{os.getpid()}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.file = workdir / "docker-compose.yml"
        self.file.write_text(yaml.safe_dump(self.adapted()))
        self.env = {**os.environ, "WT_API_PORT": str(self.port), "WT_MODEL": "tiny.en"}
        self.compose = [*compose_command(), "-p", self.project, "-f", str(self.file)]

    def adapted(self) -> dict:
        """The shipped file with four test settings: a short health interval, a stopped
        replica giving its job back at once (--shutdown-timeout 1), greedy decoding, two
        jobs a batch; and,
        on a Docker host without a bridge network, daemons without a network and the door
        on the host's."""
        spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
        wt, api = spec["services"]["wt"], spec["services"]["api"]
        wt.pop("build", None)  # built above, from the same Dockerfile
        # --max-batch 2: the replicas batch, yet 20 uploads still outnumber their 6 places,
        # so the queue the door reports is seen to rise and fall.
        wt["command"] = [
            *wt["command"],
            "--shutdown-timeout",
            "1",
            "--beam-size",
            "1",
            "--max-batch",
            "2",
        ]
        wt["healthcheck"] = {"interval": "2s", "start_period": "0s"}
        api["healthcheck"]["interval"] = "2s"
        if docker("network", "inspect", "bridge", check=False).returncode != 0:
            wt["network_mode"] = "none"
            api["network_mode"] = "host"
            api.pop("ports")
            api["command"] = [
                "127.0.0.1" if a == "0.0.0.0" else a for a in api["command"]
            ]  # the host's network: listen on loopback only
        return spec

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*self.compose, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    def up(self) -> None:
        self.run("up", "-d", "--scale", f"wt={REPLICAS}")
        self.wait_daemons(REPLICAS)

    def wait_daemons(self, count: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = httpx.get(self.url + "/health", timeout=2)
                if r.status_code == 200 and r.json()["daemons"] >= count:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{count} daemons did not come up:\n{self.logs()[-4000:]}")

    def containers(self, service: str = "wt") -> list[str]:
        ids = self.run("ps", "-q", service).stdout.split()
        return [
            c
            for c in ids
            if docker("inspect", c, "--format", "{{.State.Running}}").stdout.strip() == "true"
        ]

    def logs(self) -> str:
        proc = subprocess.run(
            [*self.compose, "logs", "--no-color"], capture_output=True, text=True, env=self.env
        )
        return proc.stdout + proc.stderr

    def upload(self, path: Path) -> str:
        with open(path, "rb") as fh:
            r = httpx.post(self.url + "/transcribe", files={"file": (path.name, fh)}, timeout=60)
        assert r.status_code == 202, r.text
        return r.json()["job_id"]

    def job(self, job_id: str) -> dict:
        r = httpx.get(f"{self.url}/jobs/{job_id}", timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_final(self, job_ids: list[str], timeout: float = 600) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        pending, done = set(job_ids), {}
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status = self.job(job_id)
                if status["state"] in ("completed", "failed", "canceled"):
                    done[job_id] = status
                    pending.discard(job_id)
            time.sleep(0.5)
        assert not pending, f"not finished: {sorted(pending)}\n{self.logs()[-4000:]}"
        return done

    def metrics(self) -> dict[str, float]:
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.url + "/metrics", timeout=10).text
        return {
            s.name + json.dumps(s.labels, sort_keys=True): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def down(self, volumes: bool = False) -> None:
        self.run("down", *(["-v"] if volumes else []), timeout=600)


@pytest.fixture(scope="module")
def stack(image, tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("compose"))
    try:
        s.up()
        yield s
    finally:
        s.down(volumes=True)


@pytest.fixture(scope="module")
def recordings() -> list[tuple[Path, str]]:
    return speech_files("en")


def health(container: str) -> str:
    return docker("inspect", container, "--format", "{{.State.Health.Status}}").stdout.strip()


def wait_health(container: str, wanted: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (now := health(container)) != wanted:
        assert time.monotonic() < deadline, f"{container} is {now}, not {wanted}"
        time.sleep(1)


# ---- the image itself ------------------------------------------------------------------


def test_the_image_is_lean_runs_as_non_root_and_has_no_ffmpeg(image):
    probe = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
        "id -u; command -v ffmpeg || echo no-ffmpeg; wt --version",
    ).stdout.split()  # fmt: skip
    assert probe == ["10001", "no-ffmpeg", "wt", VERSION], probe
    size = int(docker("image", "inspect", image, "--format", "{{.Size}}").stdout)
    grew = "the default CPU image grew (docs/deployment.md: Image sizes)"
    assert size <= 1.6e9, f"{size / 1e9:.2f} GB: {grew}"
    script = (
        "from importlib.util import find_spec as f; print(f('torch') is None, f('whisper') is None)"
    )
    no_torch = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", script
    ).stdout.split()
    assert no_torch == ["True", "True"], no_torch


def test_the_openai_image_runs_the_openai_engine(openai_image, tmp_path):
    audio = ROOT / "samples" / "arctic_a0003.wav"
    shutil.copy(audio, tmp_path / "a.wav")
    tmp_path.chmod(0o777)
    out = docker(
        "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/work", "--entrypoint", "wt",
        openai_image, "transcribe", "/work/a.wav", "-e", "openai", "-m", "tiny.en",
        "-o", "-", "-f", "txt", "-q",
        timeout=600,
    ).stdout  # fmt: skip
    assert "20th time that evening" in out or "twentieth time that evening" in out, out


# ---- the compose deployment --------------------------------------------------------------


def test_twenty_recordings_each_complete_exactly_once_with_the_right_words(stack, recordings):
    files = [recordings[i % len(recordings)] for i in range(20)]
    ids = [stack.upload(path) for path, _ in files]
    deepest = 0.0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        depth = stack.metrics()["wt_queue_depth{}"]
        deepest = max(deepest, depth)
        if depth == 0 and all(stack.job(i)["state"] == "completed" for i in ids[-3:]):
            break
        time.sleep(0.3)
    done = stack.wait_final(ids)
    assert deepest >= 5, deepest  # the door reported the queue while 3 daemons worked it off

    errors = []
    for job_id, (path, reference) in zip(ids, files):
        status = done[job_id]
        assert status["state"] == "completed", status
        assert status["attempts"] == 1, status  # never run twice
        text = httpx.get(f"{stack.url}/jobs/{job_id}/result", timeout=10).text
        errors.append(wer(reference, text))
        assert errors[-1] <= 0.5, (path.name, reference, text)
    assert sum(errors) / len(errors) <= 0.2, errors

    completed = [
        json.loads(line.split("|", 1)[-1])
        for line in stack.logs().splitlines()
        if '"event": "completed"' in line
    ]
    by_job = {j: sum(1 for c in completed if c.get("job") == j) for j in ids}
    assert set(by_job.values()) == {1}, by_job  # one completion per job across all replicas
    hosts = {done[j]["worker"]["host"] for j in ids}
    assert len(hosts) >= 2, hosts  # the replicas shared the work

    final = stack.metrics()
    assert final["wt_queue_depth{}"] == 0
    assert final['wt_spool_jobs{"state": "completed"}'] >= 20


def test_a_stopped_replica_hands_its_job_to_another(stack, tmp_path):
    audio = encode(long_speech(120), tmp_path / "long.wav")
    job_id = stack.upload(audio)
    deadline = time.monotonic() + 120
    while (status := stack.job(job_id))["state"] != "processing":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    host = status["worker"]["host"]
    (victim,) = [
        c
        for c in stack.containers()
        if docker("inspect", c, "--format", "{{.Config.Hostname}}").stdout.strip() == host
    ]
    docker("stop", victim, timeout=120)
    final = stack.wait_final([job_id])[job_id]
    assert final["state"] == "completed", final
    assert final["worker"]["host"] != host and final["attempts"] == 2, final
    stack.up()  # back to three replicas


def test_compose_down_and_up_loses_nothing(stack, recordings):
    before = {j["job_id"] for j in httpx.get(stack.url + "/jobs", timeout=30).json()}
    new = [stack.upload(path) for path, _ in recordings[:5]]
    stack.down()  # containers gone mid-work; the volumes stay
    stack.up()
    done = stack.wait_final(new)
    assert all(s["state"] == "completed" for s in done.values()), done
    after = {j["job_id"] for j in httpx.get(stack.url + "/jobs", timeout=30).json()}
    assert before | set(new) <= after


def test_a_producer_of_another_uid_submits_through_the_shared_volume(stack, recordings, tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir(mode=0o755)
    os.chmod(inbox, 0o755)
    path, reference = recordings[0]
    shutil.copyfile(path, inbox / "talk.wav")
    os.chmod(inbox / "talk.wav", 0o644)
    volume = f"{stack.project}_spool"
    run = [
        "run", "--rm", "--network", "none", "--read-only", "--user", "10003:10003",
        "-v", f"{volume}:/spool", "-v", f"{inbox}:/in:ro",
    ]  # fmt: skip
    joined = docker(*run, "--group-add", "10001", IMAGE, "submit", "/in/talk.wav", "--wait")
    job_id = joined.stdout.split()[0]
    text = docker(*run, "--group-add", "10001", IMAGE, "result", job_id).stdout
    assert wer(reference, text) <= 0.5, text
    outsider = docker(*run, IMAGE, "submit", "/in/talk.wav", check=False)
    assert outsider.returncode == 1 and "Traceback" not in outsider.stderr, outsider.stderr
    assert "/spool/inbox" in outsider.stderr and "--group" in outsider.stderr, outsider.stderr


def test_containers_run_read_only_as_non_root_and_daemons_export_metrics(stack):
    for container in stack.containers("wt") + stack.containers("api"):
        config = json.loads(docker("inspect", container).stdout)[0]
        assert config["HostConfig"]["ReadonlyRootfs"] is True
        assert config["Config"]["User"] not in ("", "root", "0"), config["Config"]["User"]
        wrote = docker("exec", container, "sh", "-c", "touch /opt/wt/x", check=False)
        assert wrote.returncode != 0
    scrape = (
        "import urllib.request as u; "
        "print(u.urlopen('http://127.0.0.1:9400/metrics').read().decode())"
    )
    finished = 0.0
    for container in stack.containers("wt"):
        text = docker("exec", container, "python3", "-c", scrape).stdout
        assert "wt_queue_depth" in text and "wt_daemon_info" in text, text[:500]
        finished += sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("wt_jobs_finished_total")
        )
    # The replicas started by down/up count from zero; they finished at least the producer's
    # job (and whichever of the 5 in-flight jobs the old replicas had not).
    assert finished >= 1


def test_healthcheck_follows_the_daemon(stack):
    container = stack.containers("wt")[0]
    wait_health(container, "healthy")
    # A hung daemon (stopped, not beating) turns the container unhealthy.
    stop = (
        "import os, signal\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit() and int(p) not in (1, os.getpid()):\n"
        "        cmd = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')\n"
        "        if cmd[1:3] == [b'/opt/wt/bin/wt', b'daemon']: os.kill(int(p), signal.SIGNAL)\n"
    )
    docker("exec", container, "python3", "-c", stop.replace("SIGNAL", "SIGSTOP"))
    wait_health(container, "unhealthy", timeout=90)
    docker("exec", container, "python3", "-c", stop.replace("SIGNAL", "SIGCONT"))
    wait_health(container, "healthy", timeout=60)
    # A daemon that dies ends its container, and the restart policy brings it back healthy.
    restarts = int(docker("inspect", container, "--format", "{{.RestartCount}}").stdout)
    docker("exec", container, "python3", "-c", stop.replace("SIGNAL", "SIGKILL"), check=False)
    deadline = time.monotonic() + 90
    while int(docker("inspect", container, "--format", "{{.RestartCount}}").stdout) == restarts:
        assert time.monotonic() < deadline, "the container was not restarted"
        time.sleep(1)
    wait_health(container, "healthy", timeout=90)


def test_the_image_says_who_spoke_offline_and_read_only(image, tmp_path):
    from test_diarize import TWO_MEN, conversation

    folder = tmp_path / "in"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    audio, _ = conversation(TWO_MEN, folder / "talk.wav")
    os.chmod(audio, 0o644)
    out = docker(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "-v", f"{folder}:/in:ro", image,
        "transcribe", "/in/talk.wav", "--diarize", "-m", "tiny.en", "-f", "txt", "-o", "-", "-q",
    ).stdout  # fmt: skip
    tags = [line.split("]")[0] + "]" for line in out.splitlines() if line.startswith("[SPEAKER_")]
    assert tags == ["[SPEAKER_00]", "[SPEAKER_01]"] * 3, out
