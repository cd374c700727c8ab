"""deploy/k8s/ and the Dockerfile: every manifest validates against the
Kubernetes 1.33 JSON schemas (strict: unknown fields fail) with
kubernetes-validate, which ships its schemas and is run here with the network
cut off; the objects agree with each other and with the server they run:
probes on routes that exist, the HPA's metric on /metrics, the grace period
longer than the SIGTERM drain the server really does."""
from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import GOLDENS, ROOT, ember_cli

pytestmark = pytest.mark.distributed

yaml = pytest.importorskip("yaml", reason="PyYAML not installed (scripts/setup.sh installs it)")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate not installed (scripts/setup.sh installs it)")

K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.33"


def manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[f"{path.name}:{doc['kind']}"] = doc
    return docs


def by_kind(kind: str) -> dict:
    found = [d for d in manifests().values() if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_manifests_validate_offline(no_network) -> None:
    docs = manifests()
    kinds = sorted(d["kind"] for d in docs.values())
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "Kustomization",
                     "PersistentVolumeClaim", "PodDisruptionBudget", "Service"]
    for name, doc in docs.items():
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on any error
    # the validator does catch mistakes (and still offline)
    bad = yaml.safe_load((K8S / "deployment.yaml").read_text())
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    bad = yaml.safe_load((K8S / "hpa.yaml").read_text())
    bad["spec"]["minReplicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(k["resources"]) == sorted(files)


def container(dep: dict, name: str = "ember") -> dict:
    return next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_objects_agree() -> None:
    dep, svc, hpa, pvc, pdb = (by_kind(k) for k in (
        "Deployment", "Service", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
        "PodDisruptionBudget"))
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    c = container(dep)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert svc["spec"]["ports"][0]["targetPort"] in ports
    assert int(arg(c["args"], "--port")) == ports["http"]
    assert arg(c["args"], "--host") == "0.0.0.0"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    # --threads follows the CPU limit through the downward API
    assert arg(c["args"], "--threads") == "$(CPU_LIMIT)"
    env = {e["name"]: e for e in c["env"]}
    assert env["CPU_LIMIT"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    # the model cache: the PVC, filled by the init container, read-only in the server
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["model-cache"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    init = pod["spec"]["initContainers"][0]
    assert any(m["name"] == "model-cache" and not m.get("readOnly") for m in init["volumeMounts"])
    assert "ember info -m" in " ".join(init["command"])
    init_env = {e["name"]: e.get("value") for e in init["env"]}
    assert init_env["EMBER_MODEL"] == env["EMBER_MODEL"]["value"]
    assert init_env["HF_HOME"] == env["HF_HOME"]["value"]
    # the HPA scales this Deployment on a metric the server exports
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dep["metadata"]["name"])
    pods_metric = next(m for m in hpa["spec"]["metrics"] if m["type"] == "Pods")
    name = pods_metric["pods"]["metric"]["name"]
    assert name == "ember_queue_depth"
    source = (ROOT / "tools" / "server" / "metrics.c").read_text()
    assert f'"{name}", "gauge"' in source
    adapter = (K8S / "prometheus-adapter" / "values.yaml").read_text()
    assert f'as: "{name}"' in adapter
    # requests: memory at least the measured peak (341 MB) plus the body cap
    mem = c["resources"]["requests"]["memory"]
    assert mem.endswith("Mi") and int(mem[:-2]) * 2**20 >= 341e6 + int(
        arg(c["args"], "--max-pending-bytes"))


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_grace_period_covers_the_servers_drain(tmp_path: Path) -> None:
    """Run `ember serve` with the Deployment's own arguments (a fixture model,
    port 0), send SIGTERM as the kubelet does, and time the drain: /ready 503
    at once, still serving for --drain-delay, exit 0 well within
    terminationGracePeriodSeconds."""
    dep = by_kind("Deployment")
    c = container(dep)
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    drain = float(arg(c["args"], "--drain-delay"))
    shutdown = float(arg(c["args"], "--shutdown-timeout"))
    assert grace > drain + shutdown
    args = list(c["args"])
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = "0"
    args[args.index("--threads") + 1] = "1"
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([str(ember_cli()), *args, "-m", str(GOLDENS / "e2e-bert")],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        port = None
        for _ in range(300):
            m = re.search(r"listening on http://[^:]+:(\d+)", log.read_text())
            if m:
                port = int(m.group(1))
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert port, "server did not start"
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/ready") == 200 and _get(base + "/health") == 200
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert _get(base + "/ready") == 503  # the readiness probe takes the pod out
        assert _get(base + "/health") == 200  # still alive: no restart by liveness
        rc = proc.wait(timeout=grace)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, log.read_text()
    assert drain - 0.5 <= took < grace, f"drained in {took:.1f}s (drain {drain}, grace {grace})"


def test_dockerfile_runtime_packages_cover_the_binary() -> None:
    """The runtime stage installs the Debian packages of every library that
    ember and libember.so link directly (readelf NEEDED), and is bookworm."""
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(f.startswith("debian:bookworm") for f in froms), froms
    runtime = text.split("FROM debian:bookworm-slim", 1)[1]
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+)", runtime.split("rm -rf", 1)[0]))
    cli = ember_cli()
    needed = set()
    for obj in (cli, cli.parent / "libember.so.0"):
        out = subprocess.run(["readelf", "-d", str(obj)], capture_output=True, text=True,
                             check=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
    libc = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
            "libpthread.so.0", "libdl.so.2", "librt.so.1", "libgcc_s.so.1"}
    missing = []
    for lib in sorted(needed - libc - {"libember.so.0"}):
        if lib.startswith(("libcuda", "libcublas")):  # the image is built with EMBER_CUDA=OFF
            continue
        owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        if owner.returncode != 0:
            pytest.skip(f"dpkg does not know {lib}: not a Debian build machine")
        pkg = owner.stdout.split(":", 1)[0].removesuffix("t64")  # Debian 13's time64 renames
        if pkg not in installed:
            missing.append(f"{lib} ({pkg})")
    assert not missing, f"Dockerfile runtime stage lacks {missing}"
