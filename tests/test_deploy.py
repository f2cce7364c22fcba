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
    assert "# syntax=" not in text  # BuildKit would fetch a frontend from a registry
    installs = " ".join(re.findall(r"apt-get install[^&]+", text))
    assert "ffmpeg" not in installs and "nvidia/cuda" not in text  # no CUDA base image


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
    # The door runs as another user, in the spool's group (the image's wt group, 10001).
    assert api["user"].split(":")[0] != "10001" and "10001" in api["group_add"]
    assert wt["read_only"] is True and api["read_only"] is True
    assert "--metrics-port" in wt["command"]
    gpu = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())
    assert gpu["services"]["wt"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu["services"]["wt"]["build"]["args"]["VARIANT"] == "gpu"
    assert gpu["services"]["wt"]["image"] == f"wt:{version}-gpu"


def test_systemd_unit_runs_the_daemon_and_stops_it_with_sigterm():
    unit = (ROOT / "deploy" / "wt-daemon.service").read_text()
    exec_start = re.search(r"^ExecStart=(.+)$", unit, re.M).group(1)
    assert shlex.split(exec_start)[1:3] == ["daemon", "--spool"]
    assert "KillSignal=SIGTERM" in unit


def test_install_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "install.sh")], check=True)


# ---- Kubernetes: no cluster runs here; check what can be checked without one -------------
K8S = ROOT / "deploy" / "kubernetes"


def k8s_documents() -> list[dict]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.parent.name == "gpu":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


def test_kubernetes_manifests_validate_against_the_api_schemas():
    import kubernetes_validate

    core = [d for d in k8s_documents() if d["kind"] != "ScaledObject"]
    assert {d["kind"] for d in core} >= {
        "Namespace", "PersistentVolumeClaim", "Deployment", "Service"
    }  # fmt: skip
    for doc in core:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)  # raises on any error
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for listed in spec.get("resources", []) + [p["path"] for p in spec.get("patches", [])]:
            assert (kustomization.parent / listed).exists(), (kustomization, listed)


def wt_flags(*command: str) -> set[str]:
    proc = run_wt(*command, "--help", env={"COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    return set(re.findall(r"(--[a-z][a-z-]+)", proc.stdout))


def test_kubernetes_containers_run_real_commands_on_their_declared_ports():
    deployments = by_kind("Deployment")
    assert set(deployments) == {"wt-daemon", "wt-api"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        args = container["args"]
        flags = {a for a in args if a.startswith("--")}
        assert flags <= wt_flags(args[0]), (name, flags - wt_flags(args[0]))
        ports = {p["containerPort"] for p in container["ports"]}
        wanted = "--metrics-port" if args[0] == "daemon" else "--port"
        assert int(args[args.index(wanted) + 1]) in ports, (name, ports)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert int(annotations["prometheus.io/port"]) in ports
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert command[0] == "wt"
                assert {a for a in command if a.startswith("--")} <= wt_flags(*command[1:2])
    api = deployments["wt-api"]["spec"]["template"]["spec"]
    # The door runs as another user than the daemons, in the spool's group.
    daemon = deployments["wt-daemon"]["spec"]["template"]["spec"]
    assert api["securityContext"]["runAsUser"] != daemon["securityContext"]["runAsUser"]
    assert daemon["securityContext"]["fsGroup"] in api["securityContext"]["supplementalGroups"]
    (service,) = by_kind("Service").values()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in api["containers"][0]["ports"]}


def test_keda_scales_the_daemons_on_a_metric_wt_exports():
    from spool.metrics import SpoolCollector

    (scaled,) = by_kind("ScaledObject").values()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    metric = re.search(r"(wt_[a-z_]+)", trigger["metadata"]["query"]).group(1)
    import inspect

    assert f'"{metric}"' in inspect.getsource(SpoolCollector)
    float(trigger["metadata"]["threshold"])


def test_gpu_overlay_requests_gpus_for_the_daemon():
    overlay = K8S / "overlays" / "gpu"
    spec = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    (patch_ref,) = spec["patches"]
    assert patch_ref["target"]["name"] == "wt-daemon"
    patch = yaml.safe_load((overlay / patch_ref["path"]).read_text())
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "daemon"  # merges with the base container of that name
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert spec["images"][0]["newTag"] == f"{version}-gpu"  # follows the package version
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert base["images"][0]["newTag"] == version
