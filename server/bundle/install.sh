#!/usr/bin/env bash
# Install assistd from this offline bundle, or upgrade an earlier install in place.
# Uses no network: the checksums are verified first, the venv is made with pip
# --no-index from ./wheels, the images are `docker load`ed from ./images, the database is
# migrated, and a trial `assistd serve` on loopback must answer /ready before it says done.
#
#   ./install.sh [--prefix DIR] [--python PYTHON] [--no-compile] [--no-check]
#
#   --prefix DIR     where it goes (default /opt/assistd as root, else ~/assistd):
#                    DIR/venv, DIR/bin/assistd, DIR/assistd.env (yours, kept), DIR/data
#   --python PYTHON  the interpreter for the venv (default python3); its X.Y must be the
#                    bundle's (bundle.json "python")
#   --no-compile     skip byte-compiling the venv (4x faster; Python then compiles what it
#                    imports on first start, and cannot cache it where the venv is read-only)
#   --no-check       skip the trial start at the end
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" = 0 ]; then PREFIX=/opt/assistd; else PREFIX=$HOME/assistd; fi
PYTHON=python3
COMPILE=1
CHECK=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=$2; shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --no-compile) COMPILE=0; shift ;;
    --no-check) CHECK=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

# 1. Nothing is used before it is verified.
say "verifying the checksums of every file (SHA256SUMS)"
cd "$HERE"
if command -v sha256sum >/dev/null; then
  sha256sum --check --quiet --strict SHA256SUMS || die "checksum mismatch: this bundle is damaged or was changed; copy it again"
else
  "$PYTHON" - <<'PY' || die "checksum mismatch: this bundle is damaged or was changed; copy it again"
import hashlib, sys
bad = []
for line in open("SHA256SUMS"):
    digest, name = line.rstrip("\n").split("  ", 1)
    h = hashlib.sha256()
    try:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        bad.append(name); continue
    if h.hexdigest() != digest:
        bad.append(name)
for name in bad:
    print(f"{name}: FAILED", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
fi

# A file the manifest does not list could still be picked up (pip prefers the most
# specific wheel of a version), so there must be none.
unlisted=$(comm -13 <(sed 's/^[0-9a-f]*  //' SHA256SUMS | LC_ALL=C sort) \
  <(find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort))
[ -z "$unlisted" ] || die "files not in SHA256SUMS (remove them or copy the bundle again): $(echo $unlisted)"

# 2. The interpreter the wheels were resolved for.
read -r want floor < <("$PYTHON" -c 'import json; b = json.load(open("bundle.json")); print(b["python"], b.get("python_resolved_for") or b["python"])') \
  || die "$PYTHON does not run; pass --python with a CPython of the bundle's version"
read -r have full < <("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2], "%d.%d.%d" % sys.version_info[:3])')
[ "$want" = "$have" ] || die "this bundle is for Python $want, $PYTHON is $have (pass --python, or make a bundle with --python-version $full)"
# Requires-Python of some packages excludes micro versions older than the one the bundle
# was resolved for (soupsieve: >=3.11.5), and pip would stop halfway through.
"$PYTHON" -c 'import sys; sys.exit(tuple(sys.version_info[:3]) < tuple(map(int, sys.argv[1].split("."))))' "$floor" \
  || die "this bundle was resolved for Python $floor or later, $PYTHON is $full: make the bundle with --python-version $full"
version=$("$PYTHON" -c 'import json; print(json.load(open("bundle.json"))["assistd"])')

# pip sees only this bundle: no config files, no PIP_* settings, no index.
while IFS='=' read -r name _; do
  case $name in PIP_*) unset "$name" ;; esac
done < <(env)
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
pip_install=(--no-index --find-links "$HERE/wheels")
[ "$COMPILE" = 1 ] || pip_install+=(--no-compile)

# 3. The venv: made once, upgraded in place on every later run.
VENV=$PREFIX/venv
mkdir -p "$PREFIX/bin" "$PREFIX/data"
PREFIX=$(cd "$PREFIX" && pwd)
VENV=$PREFIX/venv
if [ -x "$VENV/bin/python" ] && old=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("assistd"))' 2>/dev/null); then
  say "assistd $old is installed in $PREFIX: upgrading it in place to $version (your assistd.env and data are kept; the database is migrated below, as on any start)"
  upgrade=1
else
  say "installing assistd $version into $PREFIX"
  upgrade=0
  rm -rf "$VENV"
  "$PYTHON" -m venv --without-pip "$VENV"  # no ensurepip needed (Debian: no python3-venv)
  pip_wheel=$(cd wheels && ls pip-*.whl)
  "$VENV/bin/python" "wheels/$pip_wheel/pip" install -q "${pip_install[@]}" pip
fi
start=$(date +%s)
"$VENV/bin/python" -m pip install -q "${pip_install[@]}" -r requirements.txt
"$VENV/bin/python" -m pip check >/dev/null || die "the installed packages are inconsistent: $("$VENV/bin/python" -m pip check | head -3)"
say "packages installed from $HERE/wheels in $(( $(date +%s) - start )) s"

# 4. Settings: bundle.env is this bundle's (rewritten on upgrade), assistd.env the
# operator's (written once). A variable already set in the environment wins over both.
sandbox_image=$("$PYTHON" -c 'import json; print(json.load(open("bundle.json"))["sandbox_image"] or "")')
{
  echo "# Written by install.sh of assistd $version; replaced on every upgrade."
  [ -z "$sandbox_image" ] || echo "ASSISTD_SANDBOX_IMAGE=\${ASSISTD_SANDBOX_IMAGE:-$sandbox_image}"
} >"$PREFIX/bundle.env"
if [ ! -f "$PREFIX/assistd.env" ]; then
  cat >"$PREFIX/assistd.env" <<EOF
# assistd settings (docs/configuration.md lists every variable). install.sh writes this
# file once and never changes it. A variable set in the environment wins over this file.
ASSISTD_DATA_DIR=\${ASSISTD_DATA_DIR:-$PREFIX/data}
# The local model server: Ollama on this host, say (docs/air-gapped.md).
# MODEL_BASE_URL=\${MODEL_BASE_URL:-http://127.0.0.1:11434/v1}
# DATABASE_URL=postgresql+psycopg://assistd:secret@127.0.0.1:5432/assistd
EOF
fi
cat >"$PREFIX/bin/assistd" <<EOF
#!/bin/sh
# assistd with this install's settings ($PREFIX/bundle.env, then $PREFIX/assistd.env).
set -a
. "$PREFIX/bundle.env"
[ ! -f "$PREFIX/assistd.env" ] || . "$PREFIX/assistd.env"
set +a
exec "$VENV/bin/assistd" "\$@"
EOF
chmod 755 "$PREFIX/bin/assistd"

# 5. Images, into whatever Docker daemon DOCKER_HOST (or the default socket) names.
if [ -d images ] && ls images/*.tar >/dev/null 2>&1; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    for archive in images/*.tar; do
      say "docker load -i $archive"
      docker load -i "$archive"
    done
  else
    say "WARNING: no Docker daemon answers (or no docker CLI): images not loaded; code_interpreter stays off until you run: docker load -i $HERE/images/sandbox.tar"
  fi
fi

# 6. The schema, as every start would do it.
if [ "$upgrade" = 1 ]; then
  say "migrating the database to assistd $version"
fi
"$PREFIX/bin/assistd" migrate

# 7. A trial start on a free loopback port: /ready must answer before this says done.
if [ "$CHECK" = 1 ]; then
  port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$PREFIX/install-check.log
  say "trial start: assistd serve on 127.0.0.1:$port (log: $log)"
  "$PREFIX/bin/assistd" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
  pid=$!
  ready=$("$VENV/bin/python" - "$port" "$pid" <<'PY' || true
import json, os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
            print(json.dumps(json.load(r)))
            sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1)
PY
)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -n "$ready" ] || { tail -20 "$log" >&2; die "the trial start failed (log: $log)"; }
  say "trial start answered /ready: $ready"
fi

say "assistd $version is $([ "$upgrade" = 1 ] && echo upgraded || echo installed) in $PREFIX. Start it with:"
echo "  $PREFIX/bin/assistd serve --host 127.0.0.1 --port 8000"
