"""Kubernetes manifests (deploy/k8s) checked without a cluster.

Schema validation: kubeconform (`make kubeconform` installs it as a Go module into .tools/bin)
against the Kubernetes JSON schemas that the PyPI package kubernetes-validate ships
(tests/requirements.txt); nothing is downloaded at test time. kubeconform cannot read those
files as shipped (their `$id` and absolute `$ref`s point at kubernetes.io), so the fixture
copies them with relative references. The same manifests also go through
kubernetes-validate's own validator, which needs no Go.

The rest checks that the manifests agree with the code: every env name is one the code binds
(model-service's Settings, the gateway's @ConfigurationProperties records), probes hit the
health routes, GPUs are requested, secrets and config maps referenced exist.
"""

from __future__ import annotations

import json
import re
import urllib.request
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from model_service.config import Settings
from model_service.tracing import Tracing

from stack import free_port, start_gateway
from test_compose import GATEWAY_PORT, GATEWAY_SRC, MODEL_SERVICE_PORT, ROOT, _sources

K8S_DIR = ROOT / "deploy" / "k8s"
KUBECONFORM = ROOT / ".tools" / "bin" / "kubeconform"
KUBERNETES_VERSION = "1.32.0"
# Spring Boot's own settings the manifests use (not GATEWAY_*).
SPRING_VARIABLES = {"SERVER_PORT", "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED", "JAVA_TOOL_OPTIONS"}
# OpenTelemetry's own variables, read by both tiers' tracing (model_service/tracing.py, gateway tracing/TracingConfig)
OTEL_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT"}


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents() -> list[dict]:
    return [d for p in _manifest_files() for d in yaml.safe_load_all(p.read_text()) if d]


def _one(kind: str, name: str) -> dict:
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(workload: dict) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _env_names(container: dict) -> set[str]:
    """Names the container sees: its env entries plus every key of the config maps it loads."""
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(_one("ConfigMap", source["configMapRef"]["name"])["data"])
    return names


def _env_value(container: dict, name: str) -> str:
    """A plain value from the container's config maps or env (not a secret reference)."""
    for source in container.get("envFrom", []):
        data = _one("ConfigMap", source["configMapRef"]["name"])["data"]
        if name in data:
            return data[name]
    return next(e["value"] for e in container.get("env", []) if e["name"] == name)


def _snake_upper(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).upper()


def _gateway_bound_variables() -> set[str]:
    """GATEWAY_* names Spring binds to the @ConfigurationProperties records (relaxed binding:
    gateway.timeouts.retryAfter <- GATEWAY_TIMEOUTS_RETRYAFTER is also accepted by Spring, but
    the canonical form with underscores between words is what docs and manifests use), plus
    the ${GATEWAY_...} placeholders of application.yml."""
    names: set[str] = set()
    for source in sorted(GATEWAY_SRC.rglob("*.java")):
        text = source.read_text()
        root = re.search(r'@ConfigurationProperties\("([^"]+)"\)\s*public\s+record\s+(\w+)', text)
        if not root:
            continue
        text = re.sub(r"/\*.*?\*/|^\s*//[^\n]*", "", text, flags=re.S | re.M)
        records = {}
        for match in re.finditer(r"record\s+(\w+)\s*\(", text):
            depth, end = 1, match.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                end += 1
            parameters = re.sub(r"@\w+(\([^)]*\))?", "", text[match.end() : end - 1])
            records[match.group(1)] = [p.split()[-2:] for p in parameters.split(",") if p.strip()]

        def expand(record: str, prefix: str) -> None:
            for type_name, name in records[record]:
                key = f"{prefix}_{_snake_upper(name)}"
                if type_name in records:
                    expand(type_name, key)
                else:
                    names.add(key)

        expand(root.group(2), root.group(1).replace(".", "_").upper())
    config = _sources(ROOT / "java-gateway" / "src" / "main" / "resources", "application*.y*ml")
    names |= set(re.findall(r"\$\{(GATEWAY_[A-Z0-9_]+)", config))
    return names


# --- schema validation ---------------------------------------------------------------


@pytest.fixture(scope="session")
def schema_dir(tmp_path_factory) -> Path:
    shipped = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}-local-strict"
    assert shipped.is_dir(), f"kubernetes-validate ships no schemas for {KUBERNETES_VERSION}"
    out = tmp_path_factory.mktemp("k8s-schemas")
    for schema in shipped.glob("*.json"):
        document = json.loads(schema.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        document.pop("$id", None)  # else references resolve against kubernetes.io
        (out / schema.name).write_text(json.dumps(document))
    return out


def _kubeconform(schema_dir: Path, *paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KUBECONFORM), "-strict", "-summary", "-skip", "Kustomization",
         "-schema-location", str(schema_dir) + "/{{ .ResourceKind }}{{ .KindSuffix }}.json",
         *map(str, paths)],
        capture_output=True, text=True,
    )


def _kubernetes_validate(*paths: Path) -> list[str]:
    errors = []
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") != "Kustomization":
                try:
                    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    errors.append(f"{path.name}: {error.message}")
    return errors


needs_kubeconform = pytest.mark.skipif(
    not KUBECONFORM.exists(), reason="kubeconform not installed (make kubeconform)"
)


@needs_kubeconform
def test_manifests_pass_kubeconform(schema_dir):
    result = _kubeconform(schema_dir, K8S_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every resource validated, none skipped for want of a schema.
    assert f"Valid: {len(_documents())}, Invalid: 0, Errors: 0, Skipped: 1" in result.stdout


def test_manifests_pass_kubernetes_validate():
    assert _kubernetes_validate(*_manifest_files()) == []


# Mistakes a cluster would refuse: (what is replaced, by what, the field the error names).
BREAKAGES = {
    "misspelt-field": ("terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30", "terminationGracePeriodSecond"),
    "port-as-word": ("containerPort: 8888", "containerPort: http", "containerPort"),
}


@pytest.fixture(params=sorted(BREAKAGES))
def broken_gateway(request, tmp_path) -> tuple[Path, str]:
    old, new, field = BREAKAGES[request.param]
    text = (K8S_DIR / "gateway.yaml").read_text()
    assert text.count(old) == 1
    broken = tmp_path / "gateway.yaml"
    broken.write_text(text.replace(old, new))
    return broken, field


@needs_kubeconform
def test_kubeconform_rejects_an_invalid_manifest(schema_dir, broken_gateway):
    path, field = broken_gateway
    result = _kubeconform(schema_dir, path)
    assert result.returncode == 1
    assert "Invalid: 1" in result.stdout and field in result.stdout, result.stdout


def test_kubernetes_validate_rejects_an_invalid_manifest(broken_gateway):
    path, field = broken_gateway
    errors = _kubernetes_validate(path)
    assert len(errors) == 1, errors
    assert field in errors[0] or "integer" in errors[0], errors


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl (its kustomize renders without a cluster)")
def test_kustomization_renders_every_resource_into_the_namespace():
    result = subprocess.run(["kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert len(rendered) == len(_documents())
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "llm-relay", document["metadata"]["name"]


# --- agreement with the code ------------------------------------------------------------


def test_model_service_env_names_are_its_settings():
    container = _container(_one("StatefulSet", "model-service"))
    bound = {f"MODEL_SERVICE_{name.upper()}" for name in Settings.model_fields}
    assert _env_names(container) - bound - OTEL_VARIABLES == set()


def test_model_service_settings_accept_the_manifest_values(monkeypatch):
    # Values, not only names: a Literal or a bool the settings refuse would crash the pod at start.
    container = _container(_one("StatefulSet", "model-service"))
    for name in _env_names(container):
        monkeypatch.setenv(name, _env_value(container, name) if name != "MODEL_SERVICE_API_KEY" else "k")
    settings = Settings()
    assert settings.log_format == "json"
    assert not Tracing().enabled  # the manifests' empty endpoint: off until an operator names a collector
    assert settings.port == MODEL_SERVICE_PORT and settings.device == "cuda"
    assert str(settings.model_path) == _env_value(container, "MODEL_SERVICE_MODEL_PATH")


def test_gateway_env_names_are_bound_by_the_gateway():
    bound = _gateway_bound_variables()
    # The parser itself must find what the gateway is known to bind.
    assert {"GATEWAY_UPSTREAMS", "GATEWAY_TIMEOUTS_RETRY_AFTER", "GATEWAY_BROWSER_MAX_TOKENS",
            "GATEWAY_DB_URL", "GATEWAY_ADMIN_TOKEN"} <= bound
    container = _container(_one("Deployment", "java-gateway"))
    unknown = _env_names(container) - bound - SPRING_VARIABLES - OTEL_VARIABLES
    assert unknown == set()


def test_referenced_secrets_and_config_maps_exist():
    secret = _one("Secret", "llm-relay-secrets")
    for document in _documents():
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        container = _container(document)
        for env in container.get("env", []):
            reference = env.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert reference["name"] == secret["metadata"]["name"]
                assert reference["key"] in secret["stringData"]
        _env_names(container)  # fails if a configMapRef names a missing ConfigMap


def test_secret_values_are_placeholders():
    for key, value in _one("Secret", "llm-relay-secrets")["stringData"].items():
        assert value.startswith("change-me"), key


def test_model_service_requests_a_gpu_and_probes_health():
    workload = _one("StatefulSet", "model-service")
    container = _container(workload)
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] >= 1
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
    assert _env_value(container, "MODEL_SERVICE_PORT") == str(MODEL_SERVICE_PORT)
    assert _env_value(container, "MODEL_SERVICE_HOST") == "0.0.0.0"
    # Lazy loading answers 503 on /health until the first request: liveness would kill it.
    assert _env_value(container, "MODEL_SERVICE_LOAD") == "eager"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] == "/health"
        assert ports[http["port"]] == MODEL_SERVICE_PORT
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "a 6B model needs minutes to load"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == _env_value(container, "MODEL_SERVICE_MODEL_PATH"))
    assert mount["readOnly"] is True
    assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_gateway_upstreams_name_every_model_service_replica():
    workload = _one("StatefulSet", "model-service")
    service = _one("Service", workload["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None", "headless: one DNS name per replica"
    gateway = _container(_one("Deployment", "java-gateway"))
    upstreams = _env_value(gateway, "GATEWAY_UPSTREAMS").split(",")
    expected = [
        f"http://{workload['metadata']['name']}-{i}.{service['metadata']['name']}:{MODEL_SERVICE_PORT}"
        for i in range(workload["spec"]["replicas"])
    ]
    assert upstreams == expected


def test_gateway_runs_two_replicas_under_a_disruption_budget():
    deployment = _one("Deployment", "java-gateway")
    assert deployment["spec"]["replicas"] >= 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = _one("PodDisruptionBudget", "java-gateway")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    service = _one("Service", "java-gateway")
    assert service["spec"]["selector"].items() <= labels.items()
    container = _container(deployment)
    assert _env_value(container, "SERVER_PORT") == str(GATEWAY_PORT)
    assert service["spec"]["ports"][0]["port"] == GATEWAY_PORT
    # Probe groups, not /actuator/health: that one includes the database (and upstreams), and
    # a database outage must not restart every gateway.
    assert _env_value(container, "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED") == "true"
    assert container["livenessProbe"]["httpGet"]["path"] == "/actuator/health/liveness"
    assert container["readinessProbe"]["httpGet"]["path"] == "/actuator/health/readiness"
    assert "UpstreamsHealthIndicator" in _sources(GATEWAY_SRC, "*.java")


def test_gateways_share_redis_and_postgres_services():
    container = _container(_one("Deployment", "java-gateway"))
    redis = _one("Service", "redis")
    assert _env_value(container, "GATEWAY_LIMITS_STORE") == "redis"
    assert _env_value(container, "GATEWAY_REDIS_URL") == f"redis://redis:{redis['spec']['ports'][0]['port']}"
    postgres = _one("Service", "postgres")
    assert _env_value(container, "GATEWAY_DB_URL").startswith(
        f"jdbc:postgresql://postgres:{postgres['spec']['ports'][0]['port']}/"
    )


def test_every_container_has_requests_limits_and_probes():
    for document in _documents():
        if document["kind"] not in ("Deployment", "StatefulSet"):
            continue
        container = _container(document)
        name = document["metadata"]["name"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert "memory" in container["resources"]["limits"], name
        assert "readinessProbe" in container and "livenessProbe" in container, name


def test_gateway_probe_paths_answer_on_the_real_gateway_while_no_upstream_is_up():
    """The manifest's probe paths exist with its settings, and stay 200 when every model
    replica is down (the gateway answers 503 + Retry-After itself then)."""
    container = _container(_one("Deployment", "java-gateway"))
    setting = "MANAGEMENT_ENDPOINT_HEALTH_PROBES_ENABLED"
    nobody_listens = f"http://127.0.0.1:{free_port()}"
    with start_gateway(free_port(), [nobody_listens], env={setting: _env_value(container, setting)}) as gateway:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            with urllib.request.urlopen(gateway.url + container[probe]["httpGet"]["path"], timeout=10) as response:
                assert response.status == 200, probe
                assert json.load(response) == {"status": "UP"}, probe
