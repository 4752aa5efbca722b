"""The process that runs inside a sandbox container: a tiny persistent Python kernel.

It is started as `python3 -c <this file's source>` (so the image needs nothing of ours)
and speaks JSON lines: one request per line on stdin, one reply per line on the original
stdout. During an execution file descriptors 1 and 2 point at a capture file, so output
from print, C extensions and child processes alike lands in the logs and never in the
protocol stream. Standard library only.

Requests: {"op": "exec", "code": str} | {"op": "put", "name": str, "data": b64}
| {"op": "get", "name": str} | {"op": "ping"}.
Replies: {"ok": true, ...} with, for exec: logs, error (traceback text or null),
images (base64 PNGs of open matplotlib figures), files (paths under the work dir that
were created or changed).
"""

import ast
import base64
import io
import json
import os
import sys
import tempfile
import traceback
from typing import Any

WORK = "/mnt/data"
MAX_LOG_BYTES = 64 * 1024
MAX_FILES_SCANNED = 2000

_proto = os.fdopen(os.dup(1), "w", buffering=1)
_namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}


def _snapshot() -> dict[str, tuple[int, int]]:
    seen = {}
    for root, _dirs, files in os.walk(WORK):
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            seen[path] = (st.st_mtime_ns, st.st_size)
            if len(seen) >= MAX_FILES_SCANNED:
                return seen
    return seen


def _figures() -> list[str]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    images = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        try:
            plt.figure(num).savefig(buf, format="png", bbox_inches="tight")
            images.append(base64.b64encode(buf.getvalue()).decode())
        except Exception:  # noqa: BLE001 - a broken figure must not kill the kernel
            traceback.print_exc()
    plt.close("all")
    return images


def _run(code: str) -> None:
    """Execute like a notebook cell: the value of a final expression is printed."""
    tree = ast.parse(code, "<code>", "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    exec(compile(tree, "<code>", "exec"), _namespace)
    if last is not None:
        value = eval(compile(last, "<code>", "eval"), _namespace)
        if value is not None:
            print(repr(value))


def _exec(code: str) -> dict[str, Any]:
    before = _snapshot()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    capture = tempfile.TemporaryFile(dir="/tmp")  # noqa: SIM115 - fds 1/2 point at it
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    error = None
    try:
        _run(code)
    except KeyboardInterrupt:
        error = "KeyboardInterrupt: execution interrupted"
    except BaseException:  # noqa: BLE001 - user code errors are outputs, SystemExit too
        kind, value, tb = sys.exc_info()
        while tb is not None and tb.tb_frame.f_code.co_filename != "<code>":
            tb = tb.tb_next  # the kernel's own frames are noise to the model
        error = "".join(traceback.format_exception(kind, value, tb))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    images = _figures()
    capture.seek(0)
    raw = capture.read(MAX_LOG_BYTES + 1)
    capture.close()
    logs = raw[:MAX_LOG_BYTES].decode("utf-8", "replace")
    if len(raw) > MAX_LOG_BYTES:
        logs += "\n[output truncated]"
    after = _snapshot()
    files = sorted(p for p, sig in after.items() if before.get(p) != sig)
    return {"logs": logs, "error": error, "images": images, "files": files}


def _safe_path(name: str) -> str:
    path = os.path.realpath(os.path.join(WORK, name))
    if not path.startswith(WORK + "/"):
        raise ValueError("path outside " + WORK)
    return path


def _handle(request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    if op == "exec":
        return _exec(request["code"])
    if op == "put":
        path = _safe_path(request["name"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(request["data"]))
        return {"path": path}
    if op == "get":
        with open(_safe_path(request["name"]), "rb") as fh:
            return {"data": base64.b64encode(fh.read()).decode()}
    if op == "ping":
        return {}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    _proto.write(json.dumps({"ok": True, "ready": True}) + "\n")
    while True:
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:  # an interrupt that arrived between executions
            continue
        if not line:
            return
        try:
            reply = {"ok": True, **_handle(json.loads(line))}
        except KeyboardInterrupt:
            reply = {"ok": False, "error": "KeyboardInterrupt"}
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _proto.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
