"""Build the retrieval evaluation's two corpora from Debian packages (see docs/retrieval.md).

* ``postgres``: the PostgreSQL 15 manual's Parts I-III (Tutorial, The SQL Language,
  Server Administration) as the HTML files of ``postgresql-doc-15``: every page the three
  part pages link to, in link order (296 files, 5.2 MB of HTML, 2.8 M characters parsed).
* ``gitpdf``: Git's concept guides (all of man section 7) and its user-facing file-format
  pages (gitattributes, githooks, gitignore, gitmailmap, gitmodules, gitrepository-layout
  from section 5) from ``git-man``, rendered to A4 PDF by groff (21 files, ~180 pages).

Packages are fetched with ``apt-get download`` (the pinned version when the mirror still has
it, else the current one, with a warning: the questions' exact quotes then tell whether the
text moved) and unpacked with ``dpkg -x``; nothing is installed except ``groff`` (for
``gropdf``) when it is missing. The corpora are written under ``--out`` (default
``bench/.corpus``, ignored by git) with a ``manifest.json`` naming package, version and
each file's sha256. Re-running is a no-op when the manifest matches.

    .venv/bin/python bench/corpus.py            # both corpora
    .venv/bin/python bench/corpus.py --out /tmp/corpus postgres
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / ".corpus"

POSTGRES_PACKAGE = "postgresql-doc-15"
POSTGRES_VERSION = "15.20-0+deb12u1"
POSTGRES_PARTS = ("tutorial.html", "sql.html", "admin.html")
GIT_PACKAGE = "git-man"
GIT_VERSION = "1:2.39.5-0+deb12u3"
GIT_SECTION5 = (
    "gitattributes",
    "githooks",
    "gitignore",
    "gitmailmap",
    "gitmodules",
    "gitrepository-layout",
)


def fetch(package: str, version: str, into: Path) -> str:
    """Download and unpack `package` (pinned version if available); return the version."""
    into.mkdir(parents=True, exist_ok=True)
    for spec in (f"{package}={version}", package):
        done = subprocess.run(
            ["apt-get", "download", spec], cwd=into, capture_output=True, text=True
        )
        if done.returncode == 0:
            break
        print(f"apt-get download {spec} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
    else:
        sys.exit(f"cannot download {package}; try `apt-get update` first")
    deb = next(into.glob(f"{package}_*.deb"))
    got = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if got != version:
        print(f"warning: {package} {got} instead of the pinned {version}", file=sys.stderr)
    subprocess.run(["dpkg", "-x", str(deb), str(into / "root")], check=True)
    return got


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: Path, package: str, version: str, how: str) -> None:
    files = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
    manifest = {
        "package": package,
        "version": version,
        "how": how,
        "files": {name: sha256(folder / name) for name in files},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    size = sum((folder / n).stat().st_size for n in files)
    print(f"{folder}: {len(files)} files, {size / 1e6:.2f} MB ({package} {version})")


def build_postgres(out: Path, work: Path) -> None:
    version = fetch(POSTGRES_PACKAGE, POSTGRES_VERSION, work)
    html = work / "root" / "usr" / "share" / "doc" / POSTGRES_PACKAGE / "html"
    names: list[str] = []
    for part in POSTGRES_PARTS:
        names.append(part)
        for link in re.findall(r'href="([a-z0-9._-]+\.html)', (html / part).read_text()):
            if (html / link).exists():
                names.append(link)
    # The part pages also link to each other and to the book's index: keep each file once.
    names = [n for n in dict.fromkeys(names) if n not in ("index.html", "bookindex.html")]
    names = [n for n in names if not n.startswith(("reference", "appendix", "internals"))]
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(html / name, out / name)
    write_manifest(out, POSTGRES_PACKAGE, version, "pages linked from " + ", ".join(POSTGRES_PARTS))


def build_gitpdf(out: Path, work: Path) -> None:
    if shutil.which("groff") is None or not Path("/usr/bin/gropdf").exists():
        subprocess.run(["apt-get", "install", "-y", "-qq", "groff"], check=True)
    version = fetch(GIT_PACKAGE, GIT_VERSION, work)
    man = work / "root" / "usr" / "share" / "man"
    sources = sorted((man / "man7").glob("*.7.gz")) + [
        man / "man5" / f"{name}.5.gz" for name in GIT_SECTION5
    ]
    out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        page = source.name.removesuffix(".gz")
        roff = gzip.decompress(source.read_bytes())
        pdf = subprocess.run(
            ["groff", "-man", "-Tpdf", "-P-pa4"],
            input=roff,
            capture_output=True,
            check=True,
            env={"PATH": "/usr/bin:/bin", "SOURCE_DATE_EPOCH": "0", "LC_ALL": "C.UTF-8"},
        ).stdout
        (out / f"{page}.pdf").write_bytes(pdf)
    how = "groff -man -Tpdf -P-pa4, man7 + " + ", ".join(GIT_SECTION5)
    write_manifest(out, GIT_PACKAGE, version, how)


BUILDERS = {"postgres": build_postgres, "gitpdf": build_gitpdf}


def ensure(name: str, out: Path = DEFAULT_OUT) -> Path:
    """The corpus folder, built first if missing (what the quality benchmark calls)."""
    folder = out / name
    if not (folder / "manifest.json").exists():
        with tempfile.TemporaryDirectory(prefix=f"assistd-{name}-") as work:
            BUILDERS[name](folder, Path(work))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", nargs="*", help="postgres, gitpdf (default: both)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args()
    for name in args.corpora or list(BUILDERS):
        if name not in BUILDERS:
            parser.error(f"unknown corpus {name!r}; choose from {', '.join(BUILDERS)}")
        if args.force and (args.out / name).exists():
            shutil.rmtree(args.out / name)
        print(ensure(name, args.out))


if __name__ == "__main__":
    main()
