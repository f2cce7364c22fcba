"""What can be checked of the deployment files without a Docker engine."""

from __future__ import annotations

import re
import shlex
import subprocess

import yaml
from conftest import ROOT, run_wt


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_installs_with_the_ci_install_script_and_copies_what_exists():
    text = _dockerfile()
    assert "scripts/install.sh" in text and "scripts/install.sh" in (ROOT / "Makefile").read_text()
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert 'ENTRYPOINT ["tini", "--", "wt"]' in text
    assert 'CMD ["daemon", "--spool", "/spool"]' in text


def test_healthcheck_and_default_commands_are_real_cli_commands(tmp_path):
    text = _dockerfile()
    health = re.search(r'CMD \["wt", (.+)\]', text.split("HEALTHCHECK", 1)[1]).group(1)
    args = [a.strip().strip('"') for a in health.split(",")]
    proc = run_wt(*args, "--spool", tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "inbox").mkdir()
    (tmp_path / "jobs").mkdir()
    (tmp_path / "daemons").mkdir()
    proc = run_wt(*args, "--spool", tmp_path)
    assert proc.returncode == 1 and "no live daemon" in proc.stderr


def test_compose_files_parse_and_share_the_spool_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    wt = compose["services"]["wt"]
    assert "spool:/spool" in wt["volumes"] and "spool" in compose["volumes"]
    api = compose["services"]["api"]
    assert "spool:/spool" in api["volumes"] and api["command"][0] == "serve"
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert wt["image"] == api["image"] == f"wt:{version}"  # the tag follows the package
    assert wt["command"][:3] == ["daemon", "--spool", "/spool"]
    gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    assert gpu["services"]["wt"]["deploy"]["resources"]["reservations"]["devices"]


def test_systemd_unit_runs_the_daemon_and_stops_it_with_sigterm():
    unit = (ROOT / "deploy" / "wt-daemon.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    assert shlex.split(exec_start)[1:3] == ["daemon", "--spool"]
    assert "KillSignal=SIGTERM" in unit


def test_install_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "install.sh")], check=True)
