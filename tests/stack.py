"""Starts the real tiers for tests: model-service, java-gateway and redis-server as child processes.

    with start_model_service(free_port()) as model, \\
         start_gateway(free_port(), [model.url], env={...}) as gateway:
        ...  # gateway.url, gateway.api_key

Each process gets its own session (process group), waits until its health endpoint answers,
writes its output to a log file (shown when start-up fails) and is always stopped: on
leaving the `with`, on `stop()`, or at interpreter exit. Ports are picked free by the
caller (free_port), so parallel runs never collide with 6006/8888.
"""
from __future__ import annotations

import atexit
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# LLM_RELAY_GATEWAY_JAR points at a jar built elsewhere (e.g. a private build directory)
GATEWAY_JAR = Path(os.environ.get("LLM_RELAY_GATEWAY_JAR") or REPO / "java-gateway" / "target" / "java-gateway.jar")
WEB_DIR = REPO / "web"
# what `make model` prepares and the model-service loads by default
DEFAULT_MODEL_DIR = REPO / "models" / "smollm2-135m-instruct"

_running: list["ManagedProcess"] = []


def free_port() -> int:
    """A port the OS says is free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StartupError(RuntimeError):
    pass


def metric_value(text: str, name: str) -> float:
    """The value of a Prometheus sample in `text`, summed over its labels; fails if it is not exported."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    assert seen, f"metric {name} not exported"
    return total


def sample_value(text: str, series: str) -> float:
    """The value of one exact series (`name{label="value"}`) in `text`, 0 when it is not exported yet
    (a counter no request has touched): tests compare it before and after what they do."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(predicate, timeout_s: float = 180, what: str = "condition"):
    """Polls until predicate() is truthy and returns its value. The timeout only bounds a hang
    (tests never assert on time); on expiry the test fails, naming what it waited for."""
    import pytest

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class ManagedProcess:
    """A child process with a base URL, a log file and guaranteed teardown."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int,
                 health_path: str, cwd: Path, log_dir: Path | None = None):
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.health_path = health_path
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix=f"llm-relay-{name}-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{port}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        _running.append(self)

    def wait_healthy(self, timeout_s: float) -> "ManagedProcess":
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise StartupError(f"{self.name} exited with {self.process.returncode}\n{self.log_tail()}")
            healthy, last = self.probe()
            if healthy:
                return self
            time.sleep(0.1)
        self.stop()
        raise StartupError(f"{self.name} not healthy after {timeout_s:.0f} s ({last})\n{self.log_tail()}")

    def probe(self) -> tuple[bool, str]:
        """One health check: (healthy, what was seen)."""
        try:
            with urllib.request.urlopen(self.url + self.health_path, timeout=5) as response:
                return response.status == 200, f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            return False, f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            return False, str(error)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """Kills the process at once (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        if not self._log.closed:
            self._log.close()
        if self in _running:
            _running.remove(self)

    def __enter__(self) -> "ManagedProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Gateway(ManagedProcess):
    api_key: str


@atexit.register
def _stop_all() -> None:
    for process in list(_running):
        process.stop(grace_s=5)


def start_model_service(port: int, env: dict[str, str] | None = None, *, timeout_s: float = 300,
                        log_dir: Path | None = None) -> ManagedProcess:
    """The real model-service (`python -m model_service`) on 127.0.0.1:port, waited until /health is 200."""
    # This checkout's source first: the shared venv's editable install may point at another checkout.
    source = str(REPO / "model-service" / "src")
    # float32 unless a test asks otherwise: tests compare answers exactly (streamed with not, cached with not,
    # batched with alone), which fp32 holds on every CPU; bf16 on an AMX CPU rounds by batch and prefix-cache
    # shape (measured: a streamed identity answer changed words after a cached prefix), on AVX512-BF16 alone not.
    full_env = {**os.environ, "MODEL_SERVICE_DTYPE": os.environ.get("MODEL_SERVICE_DTYPE", "float32"),
                "MODEL_SERVICE_HOST": "127.0.0.1", "MODEL_SERVICE_PORT": str(port),
                "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
                **(env or {})}
    model_dir = Path(full_env.get("MODEL_SERVICE_MODEL_PATH", DEFAULT_MODEL_DIR))
    if not (model_dir / "config.json").is_file():
        raise StartupError(f"model directory {model_dir} is not prepared: run `make model`")
    python = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
    process = ManagedProcess("model-service", [python, "-m", "model_service"], full_env, port,
                             "/health", REPO, log_dir)
    return process.wait_healthy(timeout_s)


def start_gateway(port: int, upstreams: list[str], env: dict[str, str] | None = None, *,
                  api_key: str | None = None, timeout_s: float = 180, log_dir: Path | None = None,
                  java_opts: list[str] | None = None) -> Gateway:
    """The real gateway jar on port, relaying to upstreams, serving web/, with a fresh database.

    A bootstrap API key is created (returned as gateway.api_key). The database is an H2 file
    in a new temporary directory unless env sets GATEWAY_DB_URL.
    """
    if not GATEWAY_JAR.exists():
        raise StartupError(f"{GATEWAY_JAR} is missing: cd java-gateway && mvn -B -q -DskipTests package")
    api_key = api_key or "sk-test-" + secrets.token_urlsafe(24)
    data_dir = Path(tempfile.mkdtemp(prefix="llm-relay-gateway-db-"))
    full_env = {
        **os.environ,
        "SERVER_PORT": str(port),
        "SERVER_ADDRESS": "127.0.0.1",
        "GATEWAY_UPSTREAMS": ",".join(upstreams),
        "GATEWAY_DB_URL": f"jdbc:h2:file:{data_dir}/gateway",
        "GATEWAY_WEB_DIR": str(WEB_DIR),
        "GATEWAY_BOOTSTRAP_KEY": api_key,
        **(env or {}),
    }
    java = os.path.join(os.environ.get("JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"), "bin", "java")
    if not os.path.exists(java):
        java = "java"
    args = [java, "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            *(java_opts or []), "-jar", str(GATEWAY_JAR)]
    process = Gateway("gateway", args, full_env, port, "/actuator/health", REPO / "java-gateway", log_dir)
    process.api_key = full_env["GATEWAY_BOOTSTRAP_KEY"]
    process.wait_healthy(timeout_s)
    return process


class RedisServer(ManagedProcess):
    """A redis-server child; healthy once it answers PING (it has no HTTP endpoint)."""

    def probe(self) -> tuple[bool, str]:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                connection.sendall(b"PING\r\n")
                answer = connection.recv(16)
                return answer.startswith(b"+PONG"), repr(answer)
        except OSError as error:
            return False, str(error)


def start_redis(port: int, *, timeout_s: float = 30, log_dir: Path | None = None) -> RedisServer:
    """The Debian `redis-server` on 127.0.0.1:port, in memory only (nothing saved), waited until it answers PING.

    Stopping it and starting another on the same port is how a test takes Redis away and brings it back.
    """
    redis = "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else "redis-server"
    args = [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--logfile", ""]
    process = RedisServer("redis", args, dict(os.environ), port, "", REPO, log_dir)
    return process.wait_healthy(timeout_s)
