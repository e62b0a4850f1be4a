"""The deployment files, checked without a cluster or a Docker engine: the Kubernetes manifests
against the Kubernetes 1.28 schemas kubernetes-validate bundles (offline), then what the schemas
cannot say (probes on the right endpoints, Secrets referenced and never inlined, socket.io
stickiness); the Compose file by structure; HAProxy's configurations by HAProxy itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.scaled import ENDPOINTS, haproxy_config
from tests.services import require_haproxy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.28.0"
SECRET_LOOKING = re.compile(r"SECRET|TOKEN|KEY|PASSWORD|_DB_URL|BROKER_URL|REDIS_URL|STORE_URL")
# Each Deployment: the endpoint its probes must ask (no token needed) and its port.
PROBES = {
    "giftbot-rasa": ("/", 5005),
    "giftbot-actions": ("/health", 5055),
    "giftbot-web": ("/health", 8080),
}


def _manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == kind}


@pytest.mark.parametrize(
    "manifest", _manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_each_manifest_is_valid_against_the_kubernetes_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_wrong_field() -> None:
    """So that the check above can fail: a misspelt probe field is caught offline."""
    broken = _by_kind("Deployment")["giftbot-web"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_deployment_probes_its_own_health_endpoint() -> None:
    deployments = _by_kind("Deployment")
    assert sorted(deployments) == sorted(PROBES)
    for name, (path, port) in PROBES.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            check = container[probe]["httpGet"]
            assert (check["path"], ports[check["port"]]) == (path, port), (name, probe)


def test_services_reach_the_deployments() -> None:
    deployments, services = _by_kind("Deployment"), _by_kind("Service")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = services[name]["spec"]["selector"]
        assert selector.items() <= labels.items()
        assert services[name]["spec"]["ports"][0]["port"] == PROBES[name][1]


def test_secrets_are_referenced_never_inlined() -> None:
    manifests = _manifests()
    assert not [d for d in manifests if d["kind"] == "Secret"]
    for name, config in _by_kind("ConfigMap").items():
        assert not [k for k in config["data"] if SECRET_LOOKING.search(k)], name
    for deployment in [*_by_kind("Deployment").values(), *_by_kind("Job").values()]:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": "giftbot-secrets"}} in container["envFrom"]
        assert not container.get("env")  # every value comes from the ConfigMap or the Secret


def test_the_ingress_keeps_a_socketio_client_on_one_rasa_pod() -> None:
    (ingress,) = _by_kind("Ingress").values()
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert paths["/socket.io"] == "giftbot-rasa" and paths["/"] == "giftbot-web"


def test_the_clusters_endpoints_are_the_scaled_topologys() -> None:
    endpoints = _by_kind("ConfigMap")["giftbot-endpoints"]["data"]["endpoints.yml"]
    assert yaml.safe_load(endpoints) == yaml.safe_load(ENDPOINTS.read_text())


def test_the_compose_file_runs_the_same_topology() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "rabbitmq", "migrate", "rasa", "actions", "haproxy", "web"} <= set(
        services
    )
    ours = [s for s in services.values() if s.get("image") == "giftbot:latest"]
    assert len(ours) == 4  # one image for migrate, rasa, actions and web
    for service in ours:
        assert service["env_file"] == "giftbot.env"  # the secrets
        assert not [k for k in service["environment"] if "SECRET" in k or "TOKEN" in k]
    for name in ("rasa", "actions"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert "deploy/endpoints.scaled.yml" in services["rasa"]["command"][0]
    assert services["haproxy"]["ports"] == ["5005:5005"] and services["web"]["ports"] == [
        "8080:8080"
    ]


def test_haproxy_accepts_both_configurations(tmp_path: Path) -> None:
    haproxy = require_haproxy()
    rendered = tmp_path / "haproxy.cfg"
    rendered.write_text(haproxy_config(5005, 5055, [6006, 6007], [6056, 6057]))
    for config in (rendered, DEPLOY / "haproxy" / "compose.cfg"):
        result = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
