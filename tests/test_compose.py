"""compose.yaml: valid for Debian's docker-compose, with the services, profiles, volumes
and settings docs/operations.md describes, and commands the real CLI accepts.

`docker-compose config -q` is skipped only where docker-compose is missing outside CI;
under CI (CI=true, `.ci/run` installs it) a missing one fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from server.cli import build_parser
from server.config import Settings
from tests.support.server_process import REPO

COMPOSE = REPO / "compose.yaml"
UNDER_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the `<<` merges


def with_defaults(value: str) -> str:
    """`${VAR:-default}` as compose reads it with no variables set."""
    return re.sub(r"\$\{[A-Z_]+(?::-([^}]*))?\}", lambda m: m.group(1) or "", value)


def test_docker_compose_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if UNDER_CI:
            pytest.fail("docker-compose is missing under CI (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    # No variables set: every ${...} in the file must have a default.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    for profiles in ([], ["--profile", "sandbox", "--profile", "ollama"]):
        done = subprocess.run(
            [tool, "-f", str(COMPOSE), *profiles, "config", "-q"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def test_services_profiles_and_volumes_are_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["chroma"]["image"].startswith("chromadb/chroma")
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["sandbox-image"]["profiles"] == ["sandbox"]
    assert services["sandbox-image"]["build"] == "./sandbox"
    assert services["ollama"]["profiles"] == ["ollama"]
    assert services["ollama"]["image"].startswith("ollama/ollama")
    # Every service that keeps running has a health check (one-shot ones do not run on).
    for name in ("postgres", "chroma", "api", "worker", "ollama"):
        assert services[name]["healthcheck"]["test"], name
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])
    assert set(compose["volumes"]) >= {"pgdata", "chroma", "files"}
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    # Everything outside the optional profiles starts with a plain `up`.
    assert {n for n, s in services.items() if "profiles" not in s} == {
        "postgres",
        "chroma",
        "migrate",
        "api",
        "worker",
    }


DOCKER_SOCKET = "/var/run/docker.sock:/var/run/docker.sock"


def test_assistd_services_share_database_chroma_and_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "api", "worker"):
        service = services[name]
        assert "files:/data" in service["volumes"], name
        env = {k: with_defaults(str(v)) for k, v in service["environment"].items()}
        assert env["HF_HUB_OFFLINE"] == "1" and env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
        # The settings the server really reads from that environment.
        settings = Settings.from_env(env)
        assert settings.database_url.startswith("postgresql+psycopg://assistd:")
        assert settings.database_url.endswith("@postgres:5432/assistd")
        assert settings.chroma_url == "http://chroma:8000"
        assert str(settings.data_dir) == "/data"
        assert settings.shutdown_grace_seconds == 20
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_only_the_services_that_start_sandboxes_mount_the_docker_socket(
    compose: dict[str, Any],
) -> None:
    """The socket is root on the host: api and worker start code-interpreter sessions;
    migrate (which also runs `assistd keys ...`) and the rest never get it."""
    mounting = {
        name
        for name, service in compose["services"].items()
        if any("docker.sock" in str(volume) for volume in service.get("volumes", []))
    }
    assert mounting == {"api", "worker"}
    for name in mounting:
        assert DOCKER_SOCKET in compose["services"][name]["volumes"], name


def test_api_host_ports_cover_the_replicas_with_room_to_scale(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    (mapping,) = api["ports"]
    host, container = with_defaults(mapping).rsplit(":", 1)
    assert container == "8000"
    first, _, last = host.partition("-")
    ports = range(int(first), int(last or first) + 1)
    # One host port per replica: the range must hold every replica, and the 10 that
    # docs/operations.md says `--scale api=N` can reach.
    assert len(ports) >= api["deploy"]["replicas"]
    assert len(ports) >= 10
    assert f"{first}-{last}" in (REPO / "docs" / "operations.md").read_text()


def test_every_assistd_command_parses_with_the_real_cli(compose: dict[str, Any]) -> None:
    commands = {
        name: service["command"]
        for name, service in compose["services"].items()
        if service.get("command", [None])[0] == "assistd"
    }
    assert set(commands) == {"migrate", "api", "worker"}
    parsed = {name: build_parser().parse_args(cmd[1:]) for name, cmd in commands.items()}
    assert parsed["migrate"].command == "migrate"
    assert parsed["worker"].command == "worker"
    api = parsed["api"]
    assert api.command == "serve" and api.host == "0.0.0.0" and api.port == 8000
    assert api.no_worker and not api.allow_insecure  # keys are required, never open


def test_every_setting_passes_through_env_and_is_documented(compose: dict[str, Any]) -> None:
    """.env.example lists every variable compose reads, each is documented, and an unset
    model route stays unset (no service that the default profile lacks)."""
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used == listed
    docs = (REPO / "docs" / "configuration.md").read_text()
    assert not [name for name in listed if f"`{name}`" not in docs]
    env = compose["services"]["api"]["environment"]
    assert with_defaults(env["MODEL_BASE_URL"]) == ""
    assert "ollama" not in with_defaults(str(env))


def test_scripts_dockerd_says_how_to_install_docker_when_it_is_missing(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mkdir", "cat", "seq", "sleep", "tail"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    done = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "scripts" / "dockerd")],
        env={"PATH": str(bin_dir), "ASSISTD_DOCKER_ROOT": str(tmp_path / "docker")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1 and done.stdout == ""  # `eval "$(...)"` gets nothing
    assert "apt-get install docker.io" in done.stderr


def test_the_worker_health_check_passes_against_a_real_worker(tmp_path) -> None:
    """The check compose runs in the worker container, against `assistd worker` with its
    metrics port: healthy once the loop has ticked."""
    import socket
    import sys
    import time

    from tests.support.server_process import SERVER_PYTHON, free_port

    compose_file = yaml.safe_load(COMPOSE.read_text())
    worker = compose_file["services"]["worker"]
    port = free_port()
    test = worker["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"] and worker["environment"]["ASSISTD_METRICS_PORT"]
    check = [sys.executable, *test[2:]]
    check[-1] = check[-1].replace(str(worker["environment"]["ASSISTD_METRICS_PORT"]), str(port))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ASSISTD_DATA_DIR": str(tmp_path),
        "ASSISTD_SANDBOX": "off",
        "ASSISTD_METRICS_PORT": str(port),
        "ASSISTD_WORKER_POLL_SECONDS": "0.2",
    }
    proc = subprocess.Popen(
        [SERVER_PYTHON, "-m", "server", "worker"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        time.sleep(0.5)  # a tick or two
        assert subprocess.run(check, capture_output=True, timeout=30).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0  # gone
