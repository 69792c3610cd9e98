"""
The load server of ``bench/throughput.py``: pre-generated SSE responses, sent as fast as the
socket takes them.

Run as ``python bench/_tp_server.py --counts small:20000,large:10 --framings chunk-per-event``; it
builds every (workload, framing) response in full (status line, headers and body, framing
included) before it listens, then prints one JSON line on stdout, the manifest: the port and,
per case, the response size, the SSE body size, the number of events and the crc32 of their
data. It serves until its stdin closes (the driver holds the other end), so it never outlives
the benchmark.

``GET /<workload>/<framing>?run=<token>`` gets the whole response, sent with ``sendall`` of a
memoryview in 4 MiB slices, then the server shuts its side down. A second request with the
same ``run`` token gets ``204 No Content`` (which tells an SSE client to stop reconnecting),
so a client that reconnects at the end of the stream cannot read it twice. Only stdlib: it
runs under whatever interpreter starts it, on its own core.

Framings:

- ``chunk-per-event``: ``Transfer-Encoding: chunked``, one chunk per event (what a server that
  flushes each event sends);
- ``large-chunks``: ``Transfer-Encoding: chunked``, 64 KiB chunks cut anywhere in the stream;
- ``close-delimited``: no ``Content-Length``, ``Connection: close``: the body ends when the
  server closes.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass

WORKLOADS = ("small", "llm-tokens", "multiline", "large", "crlf")
FRAMINGS = ("chunk-per-event", "large-chunks", "close-delimited")
# The full sizes: events per workload (large: events of LARGE_EVENT_BYTES).
BASE_EVENTS = {
    "small": 200_000,
    "llm-tokens": 200_000,
    "multiline": 20_000,
    "large": 50,
    "crlf": 200_000,
}
MULTILINE_LINES = 20
LARGE_EVENT_BYTES = 1024 * 1024
LARGE_CHUNK = 64 * 1024
SEND_SLICE = 4 * 1024 * 1024

HEAD_CHUNKED = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)
HEAD_CLOSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: close\r\n"
    b"\r\n"
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Stream:
    """The events of one workload, as bytes, and what a correct client must report."""

    events: list[bytes]  # each event with its terminating blank line
    count: int
    crc: int  # crc32 over the UTF-8 data of each event, in order


def _summed(events: list[bytes], data: list[str]) -> Stream:
    crc = 0
    for value in data:
        crc = zlib.crc32(value.encode(), crc)
    return Stream(events, len(data), crc)


def gen_small(count: int, eol: str = "\n") -> Stream:
    """``id: <n>`` and one JSON ``data:`` line of about 60 bytes."""
    events: list[bytes] = []
    data: list[str] = []
    for i in range(count):
        on = "true" if i % 2 else "false"
        value = f'{{"kind":"patch","key":"flag-{i:06d}","version":{i % 1000},"on":{on}}}'
        events.append(f"id: {i}{eol}data: {value}{eol}{eol}".encode())
        data.append(value)
    return _summed(events, data)


_TOKENS = (
    " the", " a", " of", " to", "ing", " and", " stream", " event", "s", ".", ",", " is",
    " in", " server", " token", " model", "\\n", " it", " for", " that", " with", " on",
    " as", " data", "ed", " be", " by", " this", " an", " or", " are", "ly", " from", " we",
)  # fmt: skip


def gen_llm_tokens(count: int) -> Stream:
    """``event: token`` and a short JSON delta, ``{"delta":" the"}``, as LLM APIs stream."""
    rng = random.Random(42)
    events: list[bytes] = []
    data: list[str] = []
    for _ in range(count):
        value = '{"delta":"' + rng.choice(_TOKENS) + '"}'
        events.append(f"event: token\ndata: {value}\n\n".encode())
        data.append(value)
    return _summed(events, data)


def gen_multiline(count: int) -> Stream:
    """Events of ``MULTILINE_LINES`` ``data:`` lines of about 40 bytes each."""
    events: list[bytes] = []
    data: list[str] = []
    for i in range(count):
        lines = [f"{i:06d}.{j:02d} lorem ipsum dolor sit amet" for j in range(MULTILINE_LINES)]
        events.append(("".join(f"data: {line}\n" for line in lines) + "\n").encode())
        data.append("\n".join(lines))
    return _summed(events, data)


def gen_large(count: int) -> Stream:
    """Events of one ``data:`` line of ``LARGE_EVENT_BYTES`` (random URL-safe characters)."""
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    table = bytes(alphabet[b % len(alphabet)] for b in range(256))
    base = random.Random(7).randbytes(LARGE_EVENT_BYTES + count).translate(table)
    events: list[bytes] = []
    data: list[str] = []
    for i in range(count):
        value = base[i : i + LARGE_EVENT_BYTES]
        events.append(b"data: " + value + b"\n\n")
        data.append(value.decode())
    return _summed(events, data)


GENERATORS: dict[str, Callable[[int], Stream]] = {
    "small": gen_small,
    "llm-tokens": gen_llm_tokens,
    "multiline": gen_multiline,
    "large": gen_large,
    "crlf": lambda count: gen_small(count, "\r\n"),
}


def frame(stream: Stream, framing: str) -> tuple[bytes, int]:
    """The whole HTTP response for ``stream`` in ``framing``, and the size of its SSE body."""
    body = b"".join(stream.events)
    if framing == "close-delimited":
        return HEAD_CLOSE + body, len(body)
    if framing == "chunk-per-event":
        parts = [HEAD_CHUNKED]
        for event in stream.events:
            parts.append(b"%x\r\n%b\r\n" % (len(event), event))
    elif framing == "large-chunks":
        parts = [HEAD_CHUNKED]
        for start in range(0, len(body), LARGE_CHUNK):
            piece = body[start : start + LARGE_CHUNK]
            parts.append(b"%x\r\n%b\r\n" % (len(piece), piece))
    else:
        raise ValueError(f"unknown framing {framing!r}")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts), len(body)


class Server:
    def __init__(self, responses: dict[str, bytes]):
        self.responses = responses
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self.sock.getsockname()[1]

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(120)
                request = b""
                while b"\r\n\r\n" not in request:
                    more = conn.recv(65536)
                    if not more or len(request) > 1 << 20:
                        return
                    request += more
                target = request.split(b" ", 2)[1].decode("latin-1")
                path, _, query = target.partition("?")
                response = self.responses.get(path.strip("/"))
                if response is None:
                    conn.sendall(NOT_FOUND)
                else:
                    token = query.partition("run=")[2].partition("&")[0]
                    with self.lock:
                        repeat = bool(token) and token in self.seen
                        self.seen.add(token)
                    if repeat:
                        conn.sendall(NO_CONTENT)
                    else:
                        view = memoryview(response)
                        for start in range(0, len(view), SEND_SLICE):
                            conn.sendall(view[start : start + SEND_SLICE])
                conn.shutdown(socket.SHUT_WR)
                # Wait for the client to close: closing first with its bytes unread could
                # reset the connection under data it has not read yet.
                while conn.recv(65536):
                    pass
        except OSError:
            pass


def build(
    counts: dict[str, int], framings: list[str], extra: list[tuple[str, int, str]]
) -> tuple[dict[str, bytes], dict[str, dict[str, int]]]:
    """Responses by path, and the manifest entry of each path."""
    responses: dict[str, bytes] = {}
    manifest: dict[str, dict[str, int]] = {}

    def add(name: str, stream: Stream, framing: str) -> None:
        response, body = frame(stream, framing)
        path = f"{name}/{framing}"
        responses[path] = response
        manifest[path] = {
            "response_bytes": len(response),
            "body_bytes": body,
            "events": stream.count,
            "crc": stream.crc,
        }

    for workload, count in counts.items():
        stream = GENERATORS[workload](count)
        for framing in framings:
            add(workload, stream, framing)
        del stream
    for workload, count, framing in extra:
        # Extra cases with their own number of events: "<workload>-<count>/<framing>".
        add(f"{workload}-{count}", GENERATORS[workload](count), framing)
    return responses, manifest


def main() -> int:
    parser = argparse.ArgumentParser(description="SSE load server for bench/throughput.py")
    parser.add_argument(
        "--counts",
        default=",".join(f"{w}:{n}" for w, n in BASE_EVENTS.items()),
        help="WORKLOAD:EVENTS,... (default: the full counts, every workload)",
    )
    parser.add_argument("--framings", default=",".join(FRAMINGS))
    parser.add_argument(
        "--extra",
        default="",
        help="WORKLOAD:COUNT[:FRAMING],... extra cases (chunk-per-event by default)",
    )
    args = parser.parse_args()
    counts = {
        item.split(":")[0]: int(item.split(":")[1]) for item in args.counts.split(",") if item
    }
    framings = [f for f in args.framings.split(",") if f]
    extra = []
    for item in args.extra.split(","):
        if item:
            workload, count, *framing = item.split(":")
            extra.append((workload, int(count), framing[0] if framing else "chunk-per-event"))
    responses, manifest = build(counts, framings, extra)
    server = Server(responses)
    threading.Thread(target=server.serve, daemon=True).start()
    print(json.dumps({"port": server.port, "cases": manifest}), flush=True)
    sys.stdin.read()  # until the driver goes away
    return 0


if __name__ == "__main__":
    sys.exit(main())
