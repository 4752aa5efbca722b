"""`--with-image`: the assistd server image, built from the bundle's own wheels.

The repository's Dockerfile starts `FROM python:3.11-slim`, which needs a registry. This
builds the same image without one, as sandbox/image.py does for the sandbox: mmdebstrap
makes a Debian root filesystem (bookworm's python3 is 3.11, the interpreter the wheels
are for), the bundle's wheels are installed into /opt/assistd inside it with pip run in a
chroot and no index, and the result is `docker import`ed. What runs in the container is
therefore exactly what install.sh puts on a host.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

from sandbox.image import DEBIAN_SUITE, debian_mirror

DEBIAN_PACKAGES = ["python3", "libstdc++6", "ca-certificates", "tini"]
ENV = {
    "PATH": "/opt/assistd/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ASSISTD_DATA_DIR": "/data",
    "LANG": "C.UTF-8",
    "PYTHONUNBUFFERED": "1",
}


def build(wheels: Path, requirements: Path, tag: str, client: docker.DockerClient) -> None:
    """Build `tag` from `wheels` (which must hold pip's own wheel) and `requirements`."""
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError(
            "--with-image needs mmdebstrap (apt-get install mmdebstrap); where a registry "
            "can be reached, `docker build -t assistd .` builds the same server instead"
        )
    src = shlex.quote(str(wheels))
    reqs = shlex.quote(str(requirements))
    install = (
        "/opt/assistd/bin/python /tmp/bundle/$(cd /tmp/bundle && ls pip-*.whl)/pip install -q "
        "--no-index --find-links /tmp/bundle -r /tmp/bundle/requirements.txt"
    )
    hooks = [
        f'mkdir -p "$1/tmp/bundle" && cp -a {src}/. "$1/tmp/bundle/" '
        f'&& cp {reqs} "$1/tmp/bundle/requirements.txt"',
        'chroot "$1" python3 -m venv --without-pip /opt/assistd',
        f'chroot "$1" env PIP_CONFIG_FILE=/dev/null sh -c {shlex.quote(install)}',
        'rm -rf "$1/tmp/bundle" && mkdir -p "$1/data"',
    ]
    with tempfile.TemporaryDirectory(prefix="assistd-image-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = [
            "mmdebstrap",
            "--variant=essential",
            "--mode=root",
            "--format=directory",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            *[f"--customize-hook={hook}" for hook in hooks],
            DEBIAN_SUITE,
            str(rootfs),
            debian_mirror(),
        ]
        subprocess.run(cmd, check=True)
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for child in sorted(rootfs.iterdir()):
                tar.add(child, arcname=child.name)
        changes = [f"ENV {key}={value}" for key, value in ENV.items()]
        changes += [
            "WORKDIR /data",
            "VOLUME /data",
            "EXPOSE 8000",
            'ENTRYPOINT ["/usr/bin/tini", "--"]',
            'CMD ["assistd", "serve", "--host", "0.0.0.0", "--port", "8000"]',
        ]
        repository, _, version = tag.partition(":")
        client.api.import_image(
            src=str(archive), repository=repository, tag=version or "latest", changes=changes
        )
