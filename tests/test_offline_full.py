"""The full air-gapped round trip, from nothing: too long for every CI run (a Debian
sandbox image built with mmdebstrap, the assistd server image, a byte-compiled install),
so marked `manual`; scripts/test-offline runs it and prints the sizes and times that
docs/benchmarks.md records.

The bundle is made with `--tar`; the tarball is checked against its .sha256 and unpacked
elsewhere, both images are removed from the daemon, and install.sh runs inside a network
namespace with only loopback. Then a thread with code_interpreter and file_search, the
escape count, and the server image started with no network answering /ready.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from server.bundle import manifest
from tests.support.netns import Namespace
from tests.support.server_process import REPO
from tests.test_offline_bundle import need_namespaces, python


@pytest.mark.manual
def test_a_full_bundle_from_nothing_installs_and_runs_offline(tmp_path: Path) -> None:
    import docker

    need_namespaces()
    client = docker.from_env(timeout=600)
    client.ping()
    suffix = uuid.uuid4().hex[:8]
    sandbox_tag, server_tag = f"assistd-sandbox:full-{suffix}", f"assistd:full-{suffix}"
    out = tmp_path / "made" / "assistd-bundle"
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        python(
            "-m", "server", "bundle", "create", str(out), "--sandbox-image", sandbox_tag,
            "--sandbox-packages", "scikit-learn", "--with-image", "--server-image", server_tag,
            "--tar", timeout=3600,
        )  # fmt: skip
        timings["create_s"] = time.monotonic() - started
        archive = out.with_name("assistd-bundle.tar")
        digest = archive.with_name("assistd-bundle.tar.sha256").read_text().split()[0]
        assert manifest.sha256(archive) == digest
        for tag in (sandbox_tag, server_tag):
            client.images.remove(tag)
        site = tmp_path / "site"
        with tarfile.open(archive) as tar:
            tar.extractall(site, filter="data")
        bundle = site / "assistd-bundle"
        sizes = {
            "tar_mb": archive.stat().st_size / 1e6,
            "wheels_mb": sum(p.stat().st_size for p in (bundle / "wheels").iterdir()) / 1e6,
            "sandbox_image_mb": (bundle / "images" / "sandbox.tar").stat().st_size / 1e6,
            "server_image_mb": (bundle / "images" / "server.tar").stat().st_size / 1e6,
        }
        prefix, work = tmp_path / "prefix", tmp_path / "work"
        work.mkdir()
        since = int(time.time()) - 1
        with Namespace() as ns:
            assert ns.interfaces() == ["lo"]
            started = time.monotonic()
            first = ns.run(["bash", str(bundle / "install.sh"), "--prefix", str(prefix)])
            timings["install_s"] = time.monotonic() - started
            assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
            assert '"code_interpreter": "ok"' in first.stdout
            driver = [sys.executable, "-m", "tests.support.offline_round_trip"]
            trip = ns.run([*driver, str(prefix), str(work)], cwd=REPO)
            assert trip.returncode == 0, trip.stderr[-4000:]
            started = time.monotonic()
            again = ns.run(["bash", str(bundle / "install.sh"), "--prefix", str(prefix)])
            timings["upgrade_s"] = time.monotonic() - started
            assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
            attempts = ns.escape_attempts()
        result = json.loads(trip.stdout.splitlines()[-1])
        assert result["run_status"] == "completed", result["last_error"]
        assert result["calls"][0]["code_interpreter"]["outputs"][0]["logs"].startswith("sklearn")
        assert "41 days" in result["tool_results"][-1]
        assert "scikit-learn" in result["code_interpreter_description"]
        assert attempts == {"ipv4": 0, "ipv6": 0}
        events = client.events(
            since=since, until=int(time.time()) + 1, filters={"type": "image"}, decode=True
        )
        actions = [event["Action"] for event in events]
        assert "pull" not in actions and actions.count("load") == 4, actions

        # The server image, with no network at all, serves /ready.
        # With keys, as any deployment on 0.0.0.0 must have (the server refuses to listen
        # there without them).
        container = client.containers.run(
            server_tag,
            detach=True,
            network_mode="none",
            environment={"ASSISTD_SANDBOX": "off", "ASSISTD_API_KEYS": "sk-offline:site"},
        )
        try:
            probe = (
                "import urllib.request as u, time\n"
                "for _ in range(240):\n"
                "    try: print(u.urlopen('http://127.0.0.1:8000/ready').read().decode()); break\n"
                "    except OSError: time.sleep(0.5)\n"
            )
            code, output = container.exec_run(["python", "-c", probe])
            assert code == 0 and b'"status":"ok"' in output.replace(b" ", b""), (
                output + b"\n" + container.logs()[-3000:]
            )
        finally:
            container.remove(force=True)
        print(f"\noffline bundle (full): {json.dumps({**sizes, **timings}, indent=1)}")
    finally:
        for tag in (sandbox_tag, server_tag):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(tag, force=True)
