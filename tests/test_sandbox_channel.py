"""The server's end of the sandbox control channel, in-process over a socket pair that
stands in for Docker's attach stream: only lines signed by the kernel for the expected
reply number are believed, and whatever else arrives (forged, replayed, oversized,
flooded stderr) closes the channel within bounded memory and CPU. Also the output caps'
arithmetic. The same checks run end to end against real containers in
tests/test_sandbox_limits.py and (gVisor) tests/test_code_interpreter.py."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator

import pytest

from sandbox.channel import ChannelClosed, ReplyReader, RequestWriter
from sandbox.config import ExecResult, Output, SandboxConfig, fmt_bytes
from sandbox.kernel import Lines, sign, verify
from sandbox.limits import plan_outputs

KEY = secrets.token_bytes(32)


def frame(data: bytes, stream: int = 1) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def reply(seq: int, body: dict[str, object]) -> bytes:
    return sign(KEY, b"r", seq, json.dumps(body).encode())


@pytest.fixture
def wire() -> Iterator[tuple[socket.socket, ReplyReader]]:
    ours, theirs = socket.socketpair()
    reader = ReplyReader(ours.recv, KEY, max_line=64 * 1024).start()
    yield theirs, reader
    theirs.close()
    ours.close()


def test_signed_replies_arrive_in_order_even_split_across_frames(wire) -> None:  # type: ignore[no-untyped-def]
    container, reader = wire
    data = reply(0, {"ready": True}) + reply(1, {"ok": True, "logs": "x" * 5000})
    for i in range(0, len(data), 777):  # frames cut anywhere, lines cut anywhere
        container.sendall(frame(data[i : i + 777]))
    assert reader.get(5) == {"ready": True}
    assert reader.get(5) == {"ok": True, "logs": "x" * 5000}
    assert reader.get(0.05) is None  # nothing more: a timeout, not an error


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b'{"ok": true, "logs": "forged"}\n', "wrong signature"),
        (sign(secrets.token_bytes(32), b"r", 1, b'{"ok": true}'), "wrong signature"),
        (reply(0, {"ok": True}), "wrong signature"),  # a replay of reply 0
        (sign(KEY, b"q", 1, b'{"op": "exec"}'), "wrong signature"),  # a request reflected
        (reply(1, ["not", "an", "object"]), "not a JSON object"),  # type: ignore[arg-type]
    ],
)
def test_anything_the_kernel_did_not_sign_closes_the_channel(wire, line: bytes, why: str) -> None:  # type: ignore[no-untyped-def]
    container, reader = wire
    container.sendall(frame(reply(0, {"ready": True})) + frame(line) + frame(reply(1, {"ok": 1})))
    assert reader.get(5) == {"ready": True}
    with pytest.raises(ChannelClosed) as closed:
        reader.get(5)
    assert closed.value.reason is not None and why in closed.value.reason
    assert "control channel" in closed.value.reason
    with pytest.raises(ChannelClosed):  # and it stays closed: the genuine reply 1 is not read
        reader.get(0.05)


def test_an_endless_line_closes_the_channel_within_the_cap() -> None:
    ours, container = socket.socketpair()
    reader = ReplyReader(ours.recv, KEY, max_line=64 * 1024).start()
    sent = 0
    chunk = frame(b"x" * 60_000)

    def flood() -> None:
        nonlocal sent
        try:
            for _ in range(2000):  # 120 MB if nobody stopped it
                container.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass

    writer = threading.Thread(target=flood, daemon=True)
    writer.start()
    with pytest.raises(ChannelClosed) as closed:
        reader.get(10)
    assert "over 64 KiB" in str(closed.value.reason)
    ours.close()  # what Session.close does: the flood now meets a closed socket
    writer.join(5)
    assert not writer.is_alive()
    assert sent < 2_000_000  # read no further than about the cap plus socket buffers
    container.close()


def test_a_huge_frame_header_allocates_nothing_and_stderr_floods_are_cut(wire) -> None:  # type: ignore[no-untyped-def]
    container, reader = wire
    container.sendall(bytes([2, 0, 0, 0]) + (2**32 - 1).to_bytes(4, "big"))  # "4 GiB of stderr"
    container.sendall(b"e" * 70_000)
    with pytest.raises(ChannelClosed) as closed:
        reader.get(5)
    assert "on stderr" in str(closed.value.reason)


def test_the_end_of_the_stream_is_a_closed_channel_without_blame(wire) -> None:  # type: ignore[no-untyped-def]
    container, reader = wire
    container.sendall(frame(reply(0, {"ready": True})))
    container.close()
    assert reader.get(5) == {"ready": True}
    with pytest.raises(ChannelClosed) as closed:
        reader.get(5)
    assert closed.value.reason is None  # the session asks Docker why (OOM, exit code)


def test_requests_are_signed_as_the_kernel_checks_them() -> None:
    sent: list[bytes] = []
    writer = RequestWriter(sent.append, KEY)
    writer.handshake()
    writer.send({"op": "ping"})
    writer.send({"op": "exec", "code": "1"})
    assert json.loads(sent[0]) == {"key": KEY.hex()}
    assert verify(KEY, b"q", 1, sent[1].strip(b"\n")) == b'{"op": "ping"}'
    assert verify(KEY, b"q", 2, sent[2].strip(b"\n")) is not None
    assert verify(KEY, b"q", 1, sent[2].strip(b"\n")) is None  # out of order: dropped


def test_kernel_lines_drop_overlong_lines_whole() -> None:
    data = iter([b"short\n" + b"y" * 50, b"y" * 100, b"\nnext\n", b""])
    lines = Lines(lambda _n: next(data), limit=64)
    assert [lines.read_line(), lines.read_line(), lines.read_line()] == [b"short", b"next", None]


def test_output_caps_name_every_skipped_output() -> None:
    cfg = SandboxConfig(max_files=2, max_file_bytes=100, max_images=1, max_output_bytes=250)
    result = ExecResult(
        logs="",
        figures=[Output("/mnt/.figures/a.png", 10), Output("/mnt/.figures/b.png", 10)],
        files=[
            Output("/mnt/data/in.csv", 10),  # an input: never returned, never counted
            Output("/mnt/data/big", 101),
            Output("/mnt/data/a", 100),
            Output("/mnt/data/b", 100),
            Output("/mnt/data/c", 1),
        ],
        files_unlisted=3,
    )
    plan = plan_outputs(result, cfg, skip={"/mnt/data/in.csv"})
    assert [f.path for f in plan.figures] == ["/mnt/.figures/a.png"]
    assert [f.path for f in plan.files] == ["/mnt/data/a", "/mnt/data/b"]
    assert plan.budget == 250 - 210
    text = "\n".join(plan.notes)
    assert "1 image not shown" in text and "at most 1 image " in text
    assert "/mnt/data/big (101 bytes)" in text and "limit per file" in text
    assert "4 files not returned (/mnt/data/c)" in text  # c, and 3 the kernel did not list
    assert "in.csv" not in text


def test_sizes_read_as_people_write_them() -> None:
    assert [fmt_bytes(n) for n in (12, 2048, 5 * 2**20, 6_291_456 + 2**19, 2**30)] == [
        "12 bytes",
        "2 KiB",
        "5 MiB",
        "6.5 MiB",
        "1 GiB",
    ]


def test_a_kernel_reply_naming_many_long_files_is_trimmed_under_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 changed files (the most the kernel names) with 4 KB names must not make a
    genuine reply pass the server's 1 MiB cap (which would end the session): the file
    list shrinks, its total stays, and the server notes the files it was not told of."""
    from sandbox import kernel

    written: list[bytes] = []
    monkeypatch.setattr(
        kernel.os, "write", lambda _fd, data: written.append(bytes(data)) or len(data)
    )
    supervisor = kernel.Supervisor(KEY, "")
    names = [["/mnt/data/" + "界" * 1300 + str(i), 1] for i in range(100)]
    logs, error = "\x00" * 65536, "\x00" * 16384  # the most each may hold, 6 bytes a char
    body = {"ok": True, "logs": logs, "error": error, "files": names, "files_total": 100}
    supervisor.reply(body)
    line = b"".join(written).rstrip(b"\n")
    assert len(line) < 1024 * 1024
    body = json.loads(verify(KEY, b"r", 0, line) or b"null")
    assert 0 < len(body["files"]) < 100 and body["files_total"] == 100
