"""A live fuzzer: random and mutated input against a running server while honest clients
keep chatting (issue #5).

Long run against a server it starts itself (``tests.apps.fuzz_app``, log in a file)::

    python -m tests.fuzz.live --spawn --seconds 600 --seed 1234

Against a server you started (it must serve ``tests.apps.fuzz_app`` or an app with the
same events; ``/stats`` is optional, the session checks need it)::

    python -m tests.apps.serve tests.apps.fuzz_app:build --port 5000 2>server.log &
    python -m tests.fuzz.live --url http://127.0.0.1:5000 --seconds 600 --seed 1234 \\
        --server-log server.log --server-pid $!

Replay one case (its id is printed with every finding; a case's bytes depend only on the
id, except for session ids and the captured corpus, which ``--corpus`` fixes)::

    python -m tests.fuzz.live --spawn --replay 1234-2-17 [--corpus corpus.json]

What runs at once, for ``--seconds``:

* ``--workers`` fuzz threads. Each runs cases ``<seed>-<worker>-<n>``; a case draws
  everything (its kind, its bytes, how they are cut into TCP writes) from
  ``random.Random(case_id)``. Kinds:

  - ``http``: raw HTTP requests to ``/socket.io/`` (handshake, POST/GET on a live sid,
    unknown or closed sids, OPTIONS, WebSocket upgrades, other paths) with mutated request
    lines, headers (duplicate/negative/huge/non-numeric Content-Length, CL with chunked,
    obs-fold, bare LF, NUL, huge headers), bodies shorter or longer than announced,
    chunked encodings broken in many ways, pipelining, early half-close and RST.
  - ``polling``: Engine.IO payloads POSTed to real sessions (record separators, ``b``
    base64 packets, bad types, 999..20000 packets), carrying generated or mutated
    Socket.IO packets; concurrent POST/GET; valid payloads must be answered.
  - ``sio``: Socket.IO packets over a WebSocket (bad JSON, NaN/Infinity, lone
    surrogates, deep nesting, bad placeholders, attachment counts, namespaces, ack ids,
    reserved event names, acks for unknown ids, answers to the server's questions);
    valid packets must get their exact ack.
  - ``frames``: WebSocket frames on a raw socket after a valid handshake (reserved bits,
    bad opcodes, unmasked frames, 64-bit lengths, non-minimal lengths, tiny fragments
    with interleaved control frames, invalid UTF-8 (also split across fragments), close
    frames with bad codes, data after close, abrupt disconnects mid-frame), cut into
    random TCP writes. A valid sequence must get every ack and pong; after a protocol
    violation nothing may be processed and the connection must close.
  - ``upgrade``: polling -> WebSocket upgrades, valid, mutated, concurrent or abandoned.
  - ``capture``: traffic captured from real python-socketio clients (through a recording
    proxy, at start) with live session ids put in, then bytes flipped/inserted/deleted.
  - ``victim``: a long-polling client in a room while another client broadcasts valid
    data, binary or unsafe values to it: the victim must get what was valid, never an
    HTTP error, and keep its session.

* ``REGRESSIONS``: the inputs that found bugs so far, replayed once at the start of every
  run beside the random cases (``--replay regression-NAME`` for one).
* Honest clients: python-socketio (WebSocket, polling, polling+upgrade) and, when given,
  Node socket.io-client (WebSocket, polling): echo with acks, the server's questions
  answered, broadcasts in a room. They must see no error, no disconnect, every ack, and
  every broadcast of the others in order.
* Monitors: a fresh handshake every second, the server process and its VmRSS, and the
  server log. A traceback through socketio_sync code is a finding: the session ids around
  it and the cases running then are replayed one by one at the end, to name a case that
  causes it alone. Tracebacks that gevent's pywsgi prints by itself for a bad client
  (resets, too many headers; no socketio_sync frame, no programming error) are notes.

At the end: the server must be alive and answer a fresh handshake and Socket.IO echo, its
RSS under ``--rss-limit-mb``, and ``/stats`` must come back to the honest clients only
(sessions, sockets, rooms, pending acks). Exit status 1 when a finding is not a note.
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

from tests.rawclient import decode_payload, request, sio_connect

PATH = "/socket.io/"
SEP = "\x1e"
HONEST_ROOM = "honest"
ROOT = Path(__file__).resolve().parent.parent.parent

#: Relative weights of the case kinds.
KINDS = {"http": 22, "polling": 18, "sio": 18, "frames": 20, "upgrade": 6, "capture": 12, "victim": 6}


# =========================================================================== the mutator

TOKENS = [
    b"\x1e", b"\x1e\x1e", b"b", b"4", b"42", b"45", b"451-", b"-", b",", b"/", b"/other,", b"[", b"]",
    b"{", b"}", b'"', b"\\", b"\\u0000", b"\\ud800", b"\\udfff", b"NaN", b"Infinity", b"-Infinity",
    b"1e999", b"-0", b"99999999999999999", b"1" * 17, b'{"_placeholder":true,"num":0}',
    b'{"_placeholder":true,"num":99}', b"\r\n", b"\r\n\r\n", b"\n", b"0\r\n\r\n", b"\x00", b"\xff",
    b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"%", b"%00", b"%ZZ", b"&sid=", b"&EIO=3",
    b"&transport=websocket", b"&transport=polling", b"Content-Length: ", b"Transfer-Encoding: chunked\r\n",
    b"null", b"true", b"[[[[[[[[[[", b"]]]]]]]]]]", b"\x81", b"\x82", b"\x88", b"\x89", b"\x80", b"\x7f",
    b"\xfe", b"~", b"2probe", b"3probe", b"5", b"6",
]
INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x1E, 0x22, 0x2C, 0x2D, 0x2F, 0x30, 0x39, 0x5B,
                     0x5D, 0x7B, 0x7D, 0x0D, 0x0A, 0x3A, 0x3B, 0x81, 0x82, 0x88, 0x89, 0x8A, 0xFE]
NUMBERS = [b"0", b"-1", b"00", b"1", b"4294967296", b"18446744073709551616", b"9" * 17, b"1e999",
           b"NaN", b"", b"65535", b"2147483648", b"0x10", b"+1", b"1.5"]
_DIGIT_RUN = re.compile(rb"[0-9]+")


class Mutator:
    """Small, seeded byte mutations: flip, set, insert, delete, duplicate, truncate,
    replace numbers, splice from the corpus."""

    def __init__(self, rng: random.Random, corpus: list[bytes] | None = None) -> None:
        self.rng = rng
        self.corpus = corpus or []

    def mutate(self, data: bytes, rounds: int | None = None) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        if rounds is None:
            rounds = rng.choice((1, 1, 1, 2, 2, 3, 4, 8))
        for _ in range(rounds):
            op = rng.randrange(10)
            if not buf:
                op = 3 if op % 2 else 4
            n = len(buf)
            if op == 0:
                i = rng.randrange(n)
                buf[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                buf[rng.randrange(n)] = rng.randrange(256)
            elif op == 2:
                buf[rng.randrange(n)] = rng.choice(INTERESTING_BYTES)
            elif op == 3:
                i = rng.randrange(n + 1)
                buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 4:
                i = rng.randrange(n + 1)
                tok = rng.choice(TOKENS)
                if rng.random() < 0.1:
                    tok *= rng.choice((10, 100, 1000))
                buf[i:i] = tok
            elif op == 5:
                i = rng.randrange(n)
                del buf[i:i + rng.randint(1, max(1, min(32, n - i)))]
            elif op == 6:
                i = rng.randrange(n)
                j = min(n, i + rng.randint(1, 32))
                k = rng.randrange(n + 1)
                buf[k:k] = buf[i:j] * rng.choice((1, 1, 2, 16))
            elif op == 7:
                del buf[rng.randrange(n):]
            elif op == 8:
                runs = list(_DIGIT_RUN.finditer(bytes(buf)))
                if runs:
                    m = rng.choice(runs)
                    buf[m.start():m.end()] = rng.choice(NUMBERS)
                else:
                    buf[rng.randrange(n)] ^= 0x20
            else:
                if self.corpus:
                    other = rng.choice(self.corpus)
                    if other:
                        i = rng.randrange(len(other))
                        piece = other[i:i + rng.randint(1, 64)]
                        k = rng.randrange(n + 1)
                        buf[k:k] = piece
                else:
                    buf.reverse()
        return bytes(buf)

    def mutate_text(self, text: str, rounds: int | None = None) -> str:
        """Mutate as bytes, then back to (valid) text: for places where only the
        protocol above UTF-8 is under test."""
        return self.mutate(text.encode("utf-8"), rounds).decode("utf-8", errors="replace")


# =========================================================================== values

_KEYS = ["a", "b", "n", "msg", "text", "x_y", "k1", "data", "list", "ünï", "emoji😀", ""]
_STRINGS = ["", "hello", "ünïcödé", "emoji 😀🎉", "line\nbreak", "quote\"back\\slash", "\u2028\u2029",
            "nul\u0000char", "tab\t", "<script>", "x" * 200, "{\"json\":\"in a string\"}", "\x1e", "日本語"]


def rand_json(rng: random.Random, depth: int = 0, *, node: bool = False, binary: bool = False) -> Any:
    """A JSON value that survives a round trip through Python and JavaScript (no NaN,
    no lone surrogates, integers within 2**53 for Node); ``binary`` allows bytes."""
    r = rng.random()
    if depth >= 3 or r < 0.55:
        c = rng.randrange(9)
        if c == 0:
            return rng.randint(-1000, 1000)
        if c == 1:
            return rng.randint(-2 ** 53, 2 ** 53) if node else rng.choice(
                (rng.randint(-2 ** 70, 2 ** 70), rng.randint(-2 ** 53, 2 ** 53)))
        if c == 2:
            return rng.choice((0.5, -1.25, 1e300, 3.141592653589793, 1e-300, 2.5e-8))
        if c in (3, 4):
            return rng.choice(_STRINGS)
        if c == 5:
            return "".join(chr(rng.choice((rng.randint(0x20, 0x7E), rng.randint(0xA0, 0xD7FF),
                                           rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x10FFFF))))
                           for _ in range(rng.randint(0, 12)))
        if c == 6:
            return rng.choice((True, False))
        if c == 7:
            return None
        if binary:
            return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 5, 100, 3000))))
        return "bin-less"
    if r < 0.78:
        return [rand_json(rng, depth + 1, node=node, binary=binary) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_KEYS): rand_json(rng, depth + 1, node=node, binary=binary) for _ in range(rng.randint(0, 4))}


def deconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, (bytes, bytearray)):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, list):
        return [deconstruct(v, buffers) for v in value]
    if isinstance(value, dict):
        return {k: deconstruct(v, buffers) for k, v in value.items()}
    return value


def reconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, list):
        return [reconstruct(v, buffers) for v in value]
    if isinstance(value, dict):
        if value.get("_placeholder") is True and isinstance(value.get("num"), int) and len(value) == 2:
            num = value["num"]
            return buffers[num] if 0 <= num < len(buffers) else value
        return {k: reconstruct(v, buffers) for k, v in value.items()}
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sio_text(nsp: str, ack_id: int | None, args: list[Any]) -> str:
    """The text part of an EVENT without binary data (no ``4`` prefix)."""
    text = sio_event(nsp, ack_id, args)[0]
    assert isinstance(text, str)
    return text


def sio_event(nsp: str, ack_id: int | None, args: list[Any]) -> list[str | bytes]:
    """The Engine.IO messages (without the ``4`` prefix) of a Socket.IO EVENT."""
    buffers: list[bytes] = []
    data = deconstruct(args, buffers)
    head = ("5" + f"{len(buffers)}-") if buffers else "2"
    if nsp != "/":
        head += nsp + ","
    if ack_id is not None:
        head += str(ack_id)
    return [head + dumps(data), *buffers]


@dataclass
class SioPacket:
    """A Socket.IO packet as the server sent it (attachments put back)."""

    type: int
    nsp: str
    id: int | None
    data: Any
    attachments: int = 0


def parse_sio(text: str) -> SioPacket | None:
    """Parse the text part of a server-sent Socket.IO packet (no ``4`` prefix)."""
    if not text or not text[0].isdigit():
        return None
    ptype = int(text[0])
    i = 1
    attachments = 0
    if ptype in (5, 6):
        dash = text.find("-", i)
        if dash < 0:
            return None
        attachments = int(text[i:dash])
        i = dash + 1
    nsp = "/"
    if text[i:i + 1] == "/":
        comma = text.find(",", i)
        if comma < 0:
            nsp, i = text[i:], len(text)
        else:
            nsp, i = text[i:comma], comma + 1
    j = i
    while j < len(text) and text[j].isdigit():
        j += 1
    ack_id = int(text[i:j]) if j > i else None
    try:
        data = json.loads(text[j:]) if j < len(text) else None
    except ValueError:
        return None
    return SioPacket(ptype, nsp, ack_id, data, attachments)


# =========================================================================== findings and cases

#: Findings of these kinds are reported, but do not fail a run: tracebacks that gevent's
#: pywsgi prints for a bad client with no socketio_sync code involved, WARNING lines and
#: other loggers' ERROR lines ("log"; socketio_sync's own ERROR lines, "log-error", fail
#: the run: client misbehaviour is logged at INFO). (An exception the test application's handlers caught, "handler-error", comes
#: from socketio_sync's own calls, join, emit, call: it fails the run.)
NOTE_KINDS = frozenset({"traceback-gevent", "reproduced-gevent", "log", "traceback-source"})


@dataclass
class Finding:
    kind: str
    message: str
    case: str | None = None
    detail: str = ""
    t: float = field(default_factory=time.time)

    @property
    def note(self) -> bool:
        return self.kind in NOTE_KINDS

    def render(self) -> str:
        out = f"[{self.kind}] {self.message}"
        if self.case:
            out += f"\n    case {self.case}"
        if self.detail:
            detail = self.detail if len(self.detail) <= 5000 else self.detail[:5000] + "\n..."
            out += "\n    " + detail.replace("\n", "\n    ")
        return out

    def headline(self) -> str:
        return f"[{self.kind}] {self.message[:300]}" + (f" (case {self.case})" if self.case else "")


class Case:
    """One fuzz case: its random generator, the bytes it sent, what it noticed."""

    MAX_TRANSCRIPT = 256 * 1024

    def __init__(self, fz: "Fuzzer", case_id: str, kind: str | None = None) -> None:
        self.fz = fz
        self.id = case_id
        self.rng = random.Random(case_id)
        drawn = self.rng.choices(list(fz.kinds), weights=list(fz.kinds.values()))[0]
        self.kind = kind or drawn  # drawn anyway: a replay with the kind given sees the same numbers
        if case_id.startswith("regression-"):
            self.kind = "regression"
        #: for what depends on timing (answers to the server's pings, poll loops), so that
        #: ``rng`` draws the same numbers in a replay
        self.aux = random.Random()
        self.mut = Mutator(self.rng, fz.corpus_bytes)
        self.sent: list[tuple[str, bytes]] = []
        self._sent_size = 0
        self.notes: list[str] = []
        self.sids: list[str] = []
        self.start = time.time()
        self.end: float | None = None
        self.conns: list[Conn] = []

    def record(self, label: str, data: bytes) -> None:
        if self._sent_size < self.MAX_TRANSCRIPT:
            self.sent.append((label, data[:8192] if len(data) > 8192 else data))
            self._sent_size += min(len(data), 8192)
        if self.fz.verbose:
            print(f"  [{self.id}] {label} >>> {data[:400]!r}{'...' if len(data) > 400 else ''}"
                  f" ({len(data)} bytes)", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self.fz.verbose:
            print(f"  [{self.id}] {text}", flush=True)

    def finding(self, kind: str, message: str) -> None:
        self.fz.add_finding(Finding(kind, message, self.id, self.describe()))

    def describe(self, limit: int = 6000) -> str:
        lines = [f"kind={self.kind} notes={self.notes[-12:]!r}", "sent (label, bytes):"]
        size = 0
        for label, data in self.sent:
            text = repr(data if len(data) <= 1500 else data[:1500] + b"...")
            lines.append(f"  {label}: {text}" + (f" ({len(data)} bytes)" if len(data) > 1500 else ""))
            size += len(text)
            if size > limit:
                lines.append("  ...")
                break
        return "\n".join(lines)

    def close_all(self) -> None:
        for conn in self.conns:
            conn.close()


# =========================================================================== raw TCP

class Conn:
    """A TCP connection to the server whose writes go into the case transcript."""

    def __init__(self, case: Case, timeout: float = 3.0) -> None:
        self.case = case
        fz = case.fz
        self.sock = socket.create_connection((fz.host, fz.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.eof = False
        self.closed = False
        self.inbuf = b""
        case.conns.append(self)

    def send(self, data: bytes, label: str = "tcp") -> bool:
        self.case.record(label, data)
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError as exc:
            self.case.note(f"send failed: {exc!r}")
            return False

    def deliver(self, data: bytes, label: str = "tcp", mode: str | None = None) -> bool:
        """Send ``data`` cut into TCP writes at random places (seeded)."""
        rng = self.case.rng
        if mode is None:
            mode = rng.choice(("whole", "whole", "split", "split", "tiny" if len(data) < 400 else "split"))
        if mode == "whole" or len(data) < 2:
            return self.send(data, label)
        if mode == "tiny":
            pieces = [data[i:i + 1] for i in range(len(data))]
        else:
            cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
            pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        self.case.record(f"{label} (in {len(pieces)} writes)", data)
        for piece in pieces:
            if self.closed:
                return False
            try:
                self.sock.sendall(piece)
            except OSError as exc:
                self.case.note(f"send failed: {exc!r}")
                return False
            if rng.random() < 0.2:
                time.sleep(rng.choice((0.0005, 0.002, 0.01)))
        return True

    def recv(self, timeout: float) -> bytes:
        """What arrives within ``timeout`` (b"" on timeout or end of stream)."""
        if self.eof or self.closed:
            return b""
        try:
            self.sock.settimeout(max(0.001, timeout))
            data = self.sock.recv(65536)
        except socket.timeout:
            return b""
        except OSError:
            self.eof = True
            return b""
        if not data:
            self.eof = True
        return data

    def read_for(self, duration: float, stop: Callable[[bytes], bool] | None = None) -> bytes:
        deadline = time.monotonic() + duration
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.inbuf += self.recv(left)
            if stop is not None and stop(self.inbuf):
                break
        return self.inbuf

    def shutdown_write(self) -> None:
        self.case.note("half-close (SHUT_WR)")
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self, abrupt: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if abrupt:
                self.case.note("abrupt close (RST)")
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


_STATUS_LINE = re.compile(r"HTTP/1\.[01] (\d{3})")


def parse_responses(raw: bytes) -> tuple[list[HttpResponse], bytes]:
    """The complete HTTP responses at the start of ``raw`` and what follows them (after a
    101, the WebSocket bytes)."""
    out: list[HttpResponse] = []
    pos = 0
    while True:
        end = raw.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = raw[pos:end].decode("latin-1").split("\r\n")
        m = _STATUS_LINE.match(lines[0])
        if not m:
            break
        headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(m.group(1))
        start = end + 4
        if status == 101 or status == 204 or status == 304 or 100 <= status < 200:
            out.append(HttpResponse(status, headers, b""))
            pos = start
            if status == 101:
                break
            continue
        if "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                out.append(HttpResponse(status, headers, raw[start:]))
                pos = len(raw)
                break
            if len(raw) - start < n:
                break
            out.append(HttpResponse(status, headers, raw[start:start + n]))
            pos = start + n
            continue
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            p = start
            complete = False
            while True:
                eol = raw.find(b"\r\n", p)
                if eol < 0:
                    break
                try:
                    size = int(raw[p:eol].split(b";")[0], 16)
                except ValueError:
                    break
                if size == 0:
                    trailer_end = raw.find(b"\r\n\r\n", eol)
                    p = (trailer_end + 4) if trailer_end >= 0 else len(raw)
                    complete = True
                    break
                body += raw[eol + 2:eol + 2 + size]
                p = eol + 2 + size + 2
            if not complete:
                break
            out.append(HttpResponse(status, headers, body))
            pos = p
            continue
        out.append(HttpResponse(status, headers, raw[start:]))
        pos = len(raw)
        break
    return out, raw[pos:]


def _first_response_complete(raw: bytes) -> bool:
    responses, _ = parse_responses(raw)
    return bool(responses)


# =========================================================================== HTTP helpers

def render_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"",
                   version: str = "HTTP/1.1", eol: bytes = b"\r\n") -> bytes:
    head = f"{method} {target} {version}".rstrip(" ").encode("latin-1", errors="replace") + eol
    for k, v in headers:
        head += k.encode("latin-1", errors="replace") + b": " + v.encode("latin-1", errors="replace") + eol
    return head + eol + body


def http_exchange(case: Case, raw: bytes, *, timeout: float = 2.0, label: str = "http",
                  deliver: str | None = "whole", read_all: bool = False) -> tuple[list[HttpResponse], Conn | None]:
    """Send ``raw`` on a new connection; read the responses (until EOF with ``read_all``,
    else until the first complete one); check for server errors (5xx)."""
    try:
        conn = Conn(case, timeout)
    except OSError as exc:
        case.note(f"connect failed: {exc!r}")
        case.fz.count("connect failed")
        return [], None
    conn.deliver(raw, label, deliver)
    raw_in = conn.read_for(timeout, None if read_all else _first_response_complete)
    responses, _ = parse_responses(raw_in)
    check_responses(case, responses)
    return responses, conn


def check_responses(case: Case, responses: list[HttpResponse]) -> None:
    for r in responses:
        case.fz.count(f"status {r.status}")
        if r.status >= 500 and r.status != 503:
            case.finding("http-5xx", f"the server answered {r.status}: {r.body[:200]!r}")


def valid_request(case: Case, method: str, target: str, body: bytes | None = None,
                  extra: list[tuple[str, str]] | None = None, close: bool = True) -> bytes:
    fz = case.fz
    headers = [("Host", f"{fz.host}:{fz.port}"), ("User-Agent", "socketio-sync-fuzzer"), ("Accept", "*/*")]
    if body is not None:
        headers += [("Content-Type", "text/plain;charset=UTF-8"), ("Content-Length", str(len(body)))]
    if close:
        headers.append(("Connection", "close"))
    headers += extra or []
    return render_request(method, target, headers, body or b"")


def t_param(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(7))


class Polling:
    """A long-polling session driven with recorded raw requests."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.sid: str | None = None
        self.closed = False

    def query(self) -> str:
        return f"EIO=4&transport=polling&t={t_param(self.case.aux)}&sid={self.sid}"

    def open(self, nsp: str | None = "/", wait: bool = True) -> bool:
        case = self.case
        responses, conn = http_exchange(case, valid_request(
            case, "GET", f"{PATH}?EIO=4&transport=polling&t={t_param(case.aux)}"), label="handshake")
        if conn:
            conn.close()
        if not responses or responses[0].status != 200:
            case.note(f"handshake failed: {responses[:1]!r}")
            return False
        try:
            self.sid = json.loads(responses[0].body[1:].decode())["sid"]
        except (ValueError, KeyError):
            case.finding("protocol", f"bad handshake response {responses[0].body[:200]!r}")
            return False
        case.fz.track_sid(self.sid, case)
        if nsp is None:
            return True
        status = self.post(("40" if nsp == "/" else f"40{nsp},").encode())
        if status != 200:
            return False
        if wait:
            got = self.poll_until(lambda p: isinstance(p, str) and p.startswith("40" if nsp == "/" else f"40{nsp},"),
                                  2.5)
            return got is not None
        return True

    def post(self, body: bytes, deliver: str | None = "whole", timeout: float = 2.0) -> int | None:
        case = self.case
        responses, conn = http_exchange(case, valid_request(case, "POST", f"{PATH}?{self.query()}", body),
                                        label="POST", deliver=deliver, timeout=timeout)
        if conn:
            conn.close()
        if not responses:
            return None
        status = responses[0].status
        if status not in (200, 400, 413) and status < 500:  # 5xx: check_responses reported it
            case.finding("http-status", f"POST answered {status}: {responses[0].body[:200]!r}")
        return status

    def get(self, timeout: float = 2.5) -> list[str | bytes] | None:
        """One poll; ``None`` when it fails (400, timeout). Pings are answered."""
        case = self.case
        responses, conn = http_exchange(case, valid_request(case, "GET", f"{PATH}?{self.query()}"),
                                        label="GET", timeout=timeout)
        if conn:
            conn.close()
        if not responses:
            return None
        r = responses[0]
        if r.status not in (200, 400) and r.status < 500:
            case.finding("http-status", f"GET answered {r.status}: {r.body[:200]!r}")
        if r.status != 200:
            return None
        try:
            packets = decode_payload(r.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            case.finding("protocol", f"undecodable polling response {r.body[:300]!r}: {exc!r}")
            return None
        if "2" in packets:
            self.post(b"3")
        if "1" in packets:
            self.closed = True
        return packets

    def poll_until(self, pred: Callable[[Any], bool], timeout: float) -> list[Any] | None:
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            packets = self.get(timeout=min(2.5, max(0.2, deadline - time.monotonic())))
            if packets is None:
                return None
            got.extend(packets)
            if any([pred(p) for p in packets]):  # a list: every packet is seen
                return got
        return None

    def close(self) -> None:
        if self.sid and not self.closed:
            self.post(b"1")
            self.closed = True


# =========================================================================== WebSocket helpers

def ws_frame(payload: bytes, opcode: int = 1, *, fin: bool = True, rsv: int = 0, mask: bool = True,
             mask_key: bytes | None = None, declared: int | None = None, form: int | None = None,
             rng: random.Random | None = None) -> bytes:
    """A client frame. ``declared`` lies about the length; ``form`` forces the 7/16/64-bit
    length encoding."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if declared is None else declared
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    mbit = 0x80 if mask else 0
    if form == 7:
        head = bytes((b0, mbit | (n & 0x7F)))
    elif form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n & 0xFFFF)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n & 0xFFFFFFFFFFFFFFFF)
    if not mask:
        return head + payload
    if mask_key is None:
        mask_key = bytes((rng or random).randrange(256) for _ in range(4))
    masked = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + mask_key + masked


def ws_message_frames(data: str | bytes, rng: random.Random, fragments: int = 1,
                      interleave: bool = False, pings: list[bytes] | None = None) -> bytes:
    """A (valid) message as ``fragments`` frames, with pongs (and, when ``pings`` is a
    list, pings, whose payloads are added to it) between them."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    opcode = 1 if isinstance(data, str) else 2
    if fragments <= 1 or len(payload) < 2:
        return ws_frame(payload, opcode, rng=rng)
    fragments = min(fragments, len(payload))
    cuts = sorted(rng.sample(range(1, len(payload)), fragments - 1))
    parts = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    out = b""
    for i, part in enumerate(parts):
        out += ws_frame(part, opcode if i == 0 else 0, fin=i == len(parts) - 1, rng=rng)
        if interleave and i < len(parts) - 1 and rng.random() < 0.4:
            if pings is not None and rng.random() < 0.5:
                ping = bytes(rng.randrange(256) for _ in range(rng.choice((0, 4, 125))))
                pings.append(ping)
                out += ws_frame(ping, 0x9, rng=rng)
            else:
                out += ws_frame(b"pong?" if rng.random() < 0.5 else b"", 0xA, rng=rng)
    return out


def ws_key(rng: random.Random) -> str:
    return base64.b64encode(bytes(rng.randrange(256) for _ in range(16))).decode()


class WS:
    """A client WebSocket on a raw socket: what it sends is recorded, frames from the
    server are parsed here (and checked: unmasked, valid lengths)."""

    def __init__(self, case: Case, query: str = "EIO=4&transport=websocket", *, timeout: float = 3.0,
                 extra_headers: list[tuple[str, str]] | None = None) -> None:
        self.case = case
        self.ok = False
        self.status: int | None = None
        self.closed = False
        self.close_code: int | None = None
        self.messages: collections.deque[tuple[str, Any]] = collections.deque()
        self.answer_pings = True
        self._frag: list[bytes] = []
        self._frag_op = 0
        self.conn: Conn | None = None
        fz = case.fz
        try:
            self.conn = Conn(case, timeout)
        except OSError as exc:
            case.note(f"connect failed: {exc!r}")
            return
        headers = [("Host", f"{fz.host}:{fz.port}"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                   ("Sec-WebSocket-Key", ws_key(case.rng)), ("Sec-WebSocket-Version", "13")]
        headers += extra_headers or []
        self.conn.send(render_request("GET", f"{PATH}?{query}", headers), "ws handshake")
        raw = self.conn.read_for(timeout, lambda b: b"\r\n\r\n" in b)
        responses, rest = parse_responses(raw)
        check_responses(case, responses)
        if not responses:
            case.note(f"no handshake response: {raw[:200]!r}")
            return
        self.status = responses[0].status
        if self.status != 101:
            case.note(f"handshake refused: {self.status} {responses[0].body[:100]!r}")
            return
        self.conn.inbuf = rest
        self.ok = True

    # -- sending
    def send_raw(self, data: bytes, label: str = "frames", deliver: str | None = "whole") -> bool:
        if self.conn is None:
            return False
        return self.conn.deliver(data, label, deliver)

    def send(self, data: str | bytes, label: str | None = None) -> bool:
        frame = ws_message_frames(data, self.case.rng)
        return self.send_raw(frame, label or ("text" if isinstance(data, str) else "binary"))

    # -- receiving
    def _parse(self) -> None:
        assert self.conn is not None
        buf = self.conn.inbuf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    break
                n = struct.unpack("!H", buf[2:4])[0]
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n = struct.unpack("!Q", buf[2:10])[0]
                pos = 10
            if b1 & 0x80:
                self.case.finding("ws-server", f"the server sent a masked frame: {buf[:20]!r}")
                self.closed = True
                break
            if len(buf) < pos + n:
                break
            payload, buf = buf[pos:pos + n], buf[pos + n:]
            opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
            if b0 & 0x70:
                self.case.finding("ws-server", f"the server set reserved bits: {b0:#x}")
            if opcode == 8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.messages.append(("close", self.close_code))
                self.closed = True
                continue
            if opcode == 9:
                self.messages.append(("ping", payload))
                continue
            if opcode == 10:
                self.messages.append(("pong", payload))
                continue
            if opcode in (1, 2):
                self._frag, self._frag_op = [payload], opcode
            elif opcode == 0:
                self._frag.append(payload)
            else:
                self.case.finding("ws-server", f"the server sent opcode {opcode}")
                continue
            if fin:
                data = b"".join(self._frag)
                self._frag = []
                if self._frag_op == 1:
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError:
                        self.case.finding("ws-server", f"the server sent invalid UTF-8 text: {data[:100]!r}")
                        continue
                    if text == "2" and self.answer_pings:
                        self.send_raw(ws_frame(b"3", 1, rng=self.case.aux), "pong", "whole")
                        continue
                    self.messages.append(("text", text))
                else:
                    self.messages.append(("binary", data))
        self.conn.inbuf = buf

    def pump(self, timeout: float) -> bool:
        """Read once (up to ``timeout``); False once the connection is over."""
        if self.conn is None or self.conn.eof:
            return False
        data = self.conn.recv(timeout)
        if data:
            self.conn.inbuf += data
            self._parse()
        return not self.conn.eof

    def next(self, timeout: float) -> tuple[str, Any] | None:
        deadline = time.monotonic() + timeout
        while not self.messages:
            left = deadline - time.monotonic()
            if left <= 0 or not self.pump(left):
                if self.conn is not None and self.conn.inbuf:
                    self._parse()
                break
        return self.messages.popleft() if self.messages else None

    def wait_text(self, pred: Callable[[str], bool], timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            msg = self.next(left)
            if msg is None:
                return None
            if msg[0] == "text" and pred(msg[1]):
                return msg[1]

    def wait_eof(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.conn is not None and not self.conn.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(left)
        return True

    def close(self, abrupt: bool = False) -> None:
        if self.conn is not None:
            self.conn.close(abrupt)


class AckTracker:
    """Acks a case expects (id -> args) or must never see (ids sent after a violation),
    fed with the Socket.IO packets the server sends."""

    def __init__(self, case: Case, nsp: str = "/") -> None:
        self.case = case
        self.nsp = nsp
        self.expected: dict[int, Any] = {}
        self.forbidden: set[int] = set()
        #: well-formed packets with values JSON does not have: an ack, or the connection
        #: closed (refused), but never silence
        self.answer_or_close: set[int] = set()
        self.got: dict[int, Any] = {}
        self._pending_binary: SioPacket | None = None
        self._buffers: list[bytes] = []
        self.questions: list[SioPacket] = []

    def feed(self, kind: str, data: Any) -> SioPacket | None:
        if kind == "binary":
            if self._pending_binary is None:
                self.case.finding("protocol", f"the server sent a binary message out of place: {data[:50]!r}")
                return None
            self._buffers.append(data)
            if len(self._buffers) < self._pending_binary.attachments:
                return None
            packet, self._pending_binary = self._pending_binary, None
            packet.data = reconstruct(packet.data, self._buffers)
            self._buffers = []
            return self._done(packet)
        if kind != "text" or not data.startswith("4"):
            return None
        parsed = parse_sio(data[1:])
        if parsed is None:
            self.case.finding("protocol", f"the server sent an unparsable Socket.IO packet {data[:200]!r}")
            return None
        if parsed.type in (5, 6) and parsed.attachments:
            self._pending_binary = parsed
            self._buffers = []
            return None
        return self._done(parsed)

    def _done(self, packet: SioPacket) -> SioPacket:
        if packet.type in (3, 6) and packet.id is not None and packet.nsp == self.nsp:
            if packet.id in self.forbidden:
                self.case.finding("processed-after-violation",
                                  f"ack {packet.id} answered a message sent after a protocol violation")
            self.got[packet.id] = packet.data
        if packet.type in (2, 5) and isinstance(packet.data, list) and packet.data[:1] == ["question"]:
            self.questions.append(packet)
        return packet

    def missing(self) -> list[int]:
        return [i for i in [*self.expected, *self.answer_or_close] if i not in self.got]

    def check(self, what: str) -> None:
        for ack_id, args in self.expected.items():
            if ack_id not in self.got:
                self.case.finding("missing-ack", f"{what}: no ack {ack_id} for a valid message")
            elif self.got[ack_id] != args:
                self.case.finding("wrong-ack", f"{what}: ack {ack_id} is {self.got[ack_id]!r:.300}, "
                                               f"expected {args!r:.300}")


def ws_sio_open(case: Case, nsp: str | None = "/", query: str = "EIO=4&transport=websocket") -> WS | None:
    """A WebSocket Engine.IO session (OPEN read), connected to ``nsp`` when given."""
    ws = WS(case, query)
    if not ws.ok:
        ws.close()
        return None
    first = ws.wait_text(lambda t: True, 3.0)
    if first is None or not first.startswith("0"):
        case.note(f"no open packet: {first!r}")
        ws.close()
        return None
    try:
        handshake = json.loads(first[1:])
        case.fz.track_sid(handshake["sid"], case)
        case.fz.max_payload = int(handshake.get("maxPayload", case.fz.max_payload))
    except (ValueError, KeyError, TypeError):
        case.finding("protocol", f"bad open packet {first[:200]!r}")
    if nsp is not None:
        prefix = "40" if nsp == "/" else f"40{nsp},"
        ws.send(prefix)
        reply = ws.wait_text(lambda t: t.startswith(prefix) or t.startswith("44"), 3.0)
        if reply is None or not reply.startswith(prefix):
            case.note(f"no CONNECT reply: {reply!r}")
            ws.close()
            return None
    return ws


# =========================================================================== Socket.IO generators

ROOMS = [HONEST_ROOM, "r1", "r2", "", "x" * 65, "ünï", "room\u0000"]


class Gen:
    """Generated Socket.IO traffic for one case: ``valid()``, ``invalid()``, ``unsafe()``
    and ``mutated()`` each return the Engine.IO messages (text without the ``4`` prefix,
    or bytes) of one packet; the acks a valid packet must get are registered in ``acks``
    (``expected``), those of unsafe ones in ``acks.answer_or_close``."""

    UNSAFE_VALUES = ["NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', '"\\udfff x"', '"a\\ud83d"',
                     '{"\\udc00":1}', '["x\\ud800y"]',
                     "[" * 200 + "]" * 200, "[" * 5000 + "]" * 5000, "1" * 5000, "-0", "1E+2", '"\\u0000"',
                     '{"__proto__":{"x":1}}', '{"a":1,"a":2}']

    def __init__(self, case: Case, acks: AckTracker, nsp: str = "/") -> None:
        self.case = case
        self.rng = case.rng
        self.acks = acks
        self.nsp = nsp
        self.next_id = self.rng.randint(0, 1000)

    def _pfx(self, nsp: str | None = None) -> str:
        nsp = self.nsp if nsp is None else nsp
        return "" if nsp == "/" else nsp + ","

    def new_id(self) -> int:
        self.next_id += self.rng.randint(1, 3)
        return self.next_id

    def valid(self) -> list[str | bytes]:
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            args = [rand_json(rng, binary=rng.random() < 0.3) for _ in range(rng.randint(0, 3))]
            ack_id = self.new_id()
            self.acks.expected[ack_id] = args
            return sio_event(self.nsp, ack_id, ["echo", *args])
        if r < 0.7:
            room = rng.choice(ROOMS[:3])
            maybe_id = self.new_id() if rng.random() < 0.7 else None
            if maybe_id is not None:
                self.acks.expected[maybe_id] = [True]
            return sio_event(self.nsp, maybe_id, [rng.choice(("join", "leave")), room])
        if r < 0.82:
            room = rng.choice(ROOMS[:3])
            return sio_event(self.nsp, None, ["broadcast", room, rand_json(rng, binary=rng.random() < 0.2)])
        if r < 0.9:
            return sio_event(self.nsp, self.new_id(), ["ask", rand_json(rng)])  # answer checked loosely
        if r < 0.95:
            return sio_event(self.nsp, None, ["no-such-event", rand_json(rng)])
        return ["2" + self._pfx() + dumps(["echo"])]  # an event without an ack id: no answer

    def unsafe(self) -> list[str | bytes]:
        """Well-formed packets whose JSON holds what Python's parser accepts but JSON does
        not have (NaN, Infinity, numbers out of range, lone surrogates), or deep nesting."""
        rng = self.rng
        self.case.fz.count("sent: unsafe JSON values")
        p = self._pfx()
        v = rng.choice(self.UNSAFE_VALUES)
        if rng.random() < 0.3:
            v = '{"a":[1,' + v + "]}"
        form = rng.randrange(5)
        if form == 0:
            ack_id = self.new_id()
            self.acks.answer_or_close.add(ack_id)
            return [f"2{p}{ack_id}" + f'["echo",{v}]']
        if form == 1:
            room = HONEST_ROOM if rng.random() < 0.5 else rng.choice(ROOMS[1:3])
            return [f"2{p}" + f'["broadcast","{room}",{v}]']
        if form == 2:
            return [f"2{p}{self.new_id()}" + f'["ask",{v}]']
        if form == 3:
            return [f"2{p}{self.new_id()}" + f'["join",{v}]']
        return [f"2{p}" + f'["echo",{v}]']

    def invalid(self) -> list[str | bytes]:
        rng = self.rng
        if rng.random() < 0.35:
            return self.unsafe()
        p = self._pfx()
        ph = lambda num: dumps({"_placeholder": True, "num": num})  # noqa: E731
        choices: list[Callable[[], list[str | bytes]]] = [
            lambda: [f"2{p}" + rng.choice(['["echo",', '["echo"]]', "{}", "[]", '"echo"', "[1,]", "[echo]",
                                           '["echo",undefined]', "['echo']", '["echo"] x'])],
            lambda: [f"2{p}{rng.randint(0, 99)}" + f'["echo",{rng.choice(self.UNSAFE_VALUES)}]'],
            lambda: [f"2{p}" + f'["broadcast","{rng.choice(ROOMS[:3])}",{rng.choice(self.UNSAFE_VALUES)}]'],
            lambda: [f"2{p}" + f'[{rng.choice(self.UNSAFE_VALUES)},1]'],
            lambda: [f"5{rng.choice(['1', '2', '0', '10', '11', '999999', '1000000', '', 'x', '-1'])}-{p}"
                     f"{rng.randint(1, 50)}" + dumps(["echo", {"_placeholder": True, "num": rng.choice((0, 1, 5, -1))}]),
                     *[bytes([i]) for i in range(rng.choice((0, 1, 2, 11)))]],
            lambda: [f"51-{p}" + rng.choice([f'["echo",{ph(1)}]', f'["echo",{ph("0")}]', f'["echo",{ph(0.0)}]',
                                             '["echo",{"_placeholder":true}]', f'["echo",{ph(True)}]',
                                             '["echo",{"_placeholder":1,"num":0}]']), b"\x01"],
            lambda: [f"51-{p}" + f'["echo",{ph(0)}]', rng.choice(['2["echo"]', "3", ""])],
            lambda: [bytes(rng.randrange(256) for _ in range(rng.randint(0, 20)))],  # attachment out of place
            lambda: [f"2{p}" + dumps([rng.choice(["connect", "connect_error", "disconnect", "disconnecting",
                                                  "newListener", "removeListener"]), "x"])],
            lambda: [f"2{p}" + rng.choice(["1" * 17, "0" * 16 + "1", "00", "-1", "1" * 16, "9" * 16]) + '["echo",1]'],
            lambda: [f"3{p}" + rng.choice(["", "[]", "{}", '"x"', "1[]", f"{rng.randint(0, 10**6)}[1]",
                                           "99999999999999999[1]", "5[" + "1," * 100 + "1]"])],
            lambda: [f"6{rng.choice(['1', '0', '2'])}-{p}{rng.randint(0, 99)}[{ph(0)}]", b"ack"],
            lambda: [rng.choice(["0", "0{}", "0[]", '0"x"', "0/other,", "0/nope,", "0/other", "0other,",
                                 "1", "1{}", '1"x"', "4", '4{"message":"x"}', "7", "9", "", "x", "٣", "2/other,[\"echo\"]",
                                 "2/nope,[\"echo\",1]", "2/,[\"echo\"]", "2/" + "o" * 5000 + ",[\"echo\"]"])],
            lambda: [f"2{p}" + dumps([rng.randint(-5, 5), "numeric event name"])],
            lambda: [f"2{p}" + dumps(["join", rng.choice([None, 1, [], {}, "x" * 100, True])])],
            lambda: [f"2{p}{self.new_id()}" + dumps(["ask", 1])],
        ]
        return rng.choice(choices)()

    def mutated(self) -> list[str | bytes]:
        msgs = self.valid()
        self.acks.expected.clear()  # a mutated packet may be valid or not: no expectation
        i = self.rng.randrange(len(msgs))
        m = msgs[i]
        msgs[i] = self.case.mut.mutate_text(m) if isinstance(m, str) else self.case.mut.mutate(m)
        return msgs


def answer_questions(case: Case, ws: WS, acks: AckTracker, nsp: str = "/", proper: bool = False) -> None:
    """Answer the server's ``question`` events: properly, or (unless ``proper``: an unanswered
    question holds the socket's next events for 3 s) badly, twice or not at all."""
    rng = case.aux  # questions arrive as the server gets to them
    pfx = "" if nsp == "/" else nsp + ","
    while acks.questions:
        q = acks.questions.pop(0)
        if q.id is None:
            continue
        r = 0.0 if proper else rng.random()
        if r < 0.5:
            ws.send("4" + f"3{pfx}{q.id}" + json.dumps(q.data[1:], separators=(",", ":")), "answer")
        elif r < 0.6:
            for _ in range(2):
                ws.send("4" + f"3{pfx}{q.id}" + json.dumps(q.data[1:], separators=(",", ":")), "answer twice")
        elif r < 0.7:
            ws.send("4" + f"61-{pfx}{q.id}" + dumps([{"_placeholder": True, "num": 0}]), "binary answer")
            ws.send(b"\x00\x01", "attachment")
        elif r < 0.8:
            ws.send("4" + f"3{pfx}{q.id + rng.choice((1, -1, 10**6))}[1]", "answer wrong id")
        # else: never answered


# =========================================================================== the cases

def case_http(case: Case) -> None:
    """Raw HTTP requests, structured then maybe byte-mutated."""
    fz, rng = case.fz, case.rng
    live = None
    template = rng.choice(["handshake", "post", "post", "get", "options", "ws", "ws-sid", "other-path",
                           "unknown-sid", "closed-sid"])
    sid = None
    if template in ("post", "get", "ws-sid", "closed-sid"):
        live = Polling(case)
        if not live.open(nsp=rng.choice(("/", None)), wait=False):
            return
        sid = live.sid
        if template == "closed-sid":
            live.close()
    elif template == "unknown-sid":
        sid = rng.choice(["AAAAAAAAAAAAAAAAAAAAAA", "", "x" * 300, "../../", "%00", "🙂", "a b"])
    method, body = "GET", b""
    query = f"EIO=4&transport=polling&t={t_param(rng)}"
    if sid is not None:
        query += f"&sid={sid}"
    headers = [("Host", f"{fz.host}:{fz.port}"), ("User-Agent", "fuzz"), ("Accept", "*/*")]
    path = PATH
    if template in ("post", "closed-sid", "unknown-sid") or (template == "handshake" and rng.random() < 0.2):
        method = "POST"
        body = rng.choice([b"40", b'42["echo",1]', b"3", b"6", b"1", b"2", b'421["echo","x"]\x1e3',
                           b"b" + base64.b64encode(b"\x00\x01"), b"4" * 100])
        headers += [("Content-Type", "text/plain;charset=UTF-8")]
    elif template == "options":
        method = "OPTIONS"
        headers += [("Origin", "http://evil.example"), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "content-type, x-" + "a" * rng.choice((1, 100, 5000)))]
    elif template in ("ws", "ws-sid"):
        query = query.replace("transport=polling", "transport=websocket")
        headers += [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", ws_key(rng)),
                    ("Sec-WebSocket-Version", "13")]
    elif template == "other-path":
        path = rng.choice(["/stats", "/", "/socket.io", "/socket.io/x/y", "/socket.iox/", "/engine.io/"])
    version = "HTTP/1.1"
    framing = "cl" if body else "none"
    eol = b"\r\n"
    tail = b""
    # -- structured mutations (bodies to live sessions get their framing broken more often)
    ops = list(range(14)) + ([4, 4, 5, 5, 5] if template in ("post", "closed-sid", "unknown-sid") else [])
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        m = rng.choice(ops)
        if m == 0:
            method = rng.choice(["PUT", "DELETE", "PATCH", "HEAD", "CONNECT", "TRACE", "get", "G\x00T", "",
                                 "A" * 300, "POST\t", "PRI", "GET GET"])
        elif m == 1:
            version = rng.choice(["HTTP/1.0", "HTTP/0.9", "", "HTTP/2.0", "HTTP/1.1x", "HTTP/01.1", "HTTP/1.1 x",
                                  "http/1.1", "HTTP/9"])
        elif m == 2:
            query = rng.choice([
                query + "&x=" + "y" * rng.choice((1000, 8000, 70000)), query + "&EIO=3", "EIO=4&EIO=4&" + query,
                query.replace("EIO=4", "EIO=%34"), query + "&sid=" + "%ZZ", query + "%00", query + "&\xff\xfe",
                query.replace("transport=", "transport=%FF"), query.replace("sid=", "sid=%"), "", "?", "&&&",
                query + "#frag", query.replace("EIO=4", "EIO=4.0"), query.replace("t=", "t[]=")])
        elif m == 3:
            path = rng.choice([f"http://{fz.host}:{fz.port}{PATH}", "*", "socket.io/", "/socket.io/../stats",
                               "//socket.io/", "/socket.io/%2e%2e/", "/SOCKET.IO/", "/socket.io/\x00"])
        elif m == 4:
            framing = rng.choice(["cl-short", "cl-long", "cl-missing", "cl-dup", "cl-neg", "cl-nonnum", "cl-huge",
                                  "cl-space", "cl-plus", "cl-zero-body"])
            if not body:
                body = b'42["echo","http"]'
                method = "POST" if method == "GET" else method
        elif m == 5:
            framing = rng.choice(["te", "te-bad-hex", "te-short", "te-long", "te-no-crlf", "te-ext", "te-long-ext",
                                  "te-huge", "te-17-digits", "te-negative", "te-no-end", "te-zero-no-crlf",
                                  "te-trailers", "te-space", "te-0x", "te-multi-zero", "te-plus-cl", "te-gzip",
                                  "te-chunked-gzip", "te-identity", "te-tiny", "te-bare-lf", "te-overflow-cl"])
            if not body:
                body = b'42["echo","chunked"]\x1e3'
                method = "POST" if method == "GET" else method
        elif m == 6:
            headers.append(rng.choice([("X-Big", "v" * rng.choice((8000, 20000, 70000))), ("Bad Name", "x"),
                                       ("", "empty name"), ("X-Nul", "a\x00b"), ("Host", "second.host"),
                                       ("Expect", "100-continue"), ("Connection", "keep-alive, Upgrade"),
                                       ("Upgrade", "websocket"), ("Content-Type", "application/octet-stream"),
                                       ("Origin", "null"), ("Origin", "http://" + "o" * 3000), ("Cookie", "a=" * 1000),
                                       ("Sec-WebSocket-Key", rng.choice(["", "x", "AAAA", "!" * 24])),
                                       ("Sec-WebSocket-Version", rng.choice(["8", "", "13, 13", "130"])),
                                       ("Content-Length", rng.choice(["0", "5", "-1", "abc"])),
                                       ("Transfer-Encoding", "chunked")]))
        elif m == 7:
            headers.extend(("X-H%d" % i, "v") for i in range(rng.choice((100, 300, 1000))))
        elif m == 8:
            eol = rng.choice([b"\n", b"\r", b"\r\r\n"])
        elif m == 9:
            headers = [(k, v) for k, v in headers if k != "Host" or rng.random() < 0.5]
            headers.insert(rng.randrange(len(headers) + 1), ("X-Fold", "a"))
            headers.append((" continued", "obs-fold"))
        elif m == 10:
            tail = rng.choice([b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n", b"garbage\r\n\r\n",
                               valid_request(case, "GET", f"{PATH}?EIO=4&transport=polling"),
                               b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", bytes(range(256))])
        elif m == 11:
            headers = [(k.upper() if rng.random() < 0.5 else k.lower(), v) for k, v in headers]
        elif m == 12:
            headers.append(("Content-Type", "text/plain;charset=latin-1"))
            body = body or "é€".encode("latin-1", errors="replace")
        else:
            body = case.mut.mutate(body or b"42[]")
    raw_body = body
    hdrs = list(headers)
    if framing == "cl" or (framing == "none" and method in ("POST", "PUT", "PATCH") and body):
        hdrs.append(("Content-Length", str(len(body))))
    elif framing.startswith("cl-"):
        n = len(body)
        hdrs += {
            "cl-short": [("Content-Length", str(n + rng.choice((1, 10, 1000))))],
            "cl-long": [("Content-Length", str(max(0, n - rng.randint(1, max(1, n)))))],
            "cl-missing": [],
            "cl-dup": [("Content-Length", str(n)), ("Content-Length", str(n + 5))],
            "cl-neg": [("Content-Length", "-" + str(n))],
            "cl-nonnum": [("Content-Length", rng.choice(["abc", "1e3", "0x10", "", " ", "1,2", "١٢"]))],
            "cl-huge": [("Content-Length", rng.choice(["99999999999999999999999", str(2 ** 63), str(2 ** 64),
                                                       "1000001", "100001"]))],
            "cl-space": [("Content-Length", f" {n} ")],
            "cl-plus": [("Content-Length", f"+{n}")],
            "cl-zero-body": [("Content-Length", "0")],
        }[framing]
    elif framing.startswith("te"):
        raw_body = chunked_body(rng, body, framing)
        te = {"te-gzip": "gzip", "te-chunked-gzip": "chunked, gzip", "te-identity": "identity"}.get(framing, "chunked")
        hdrs.append(("Transfer-Encoding", te))
        if framing in ("te-plus-cl", "te-overflow-cl"):
            hdrs.append(("Content-Length", str(len(body)) if framing == "te-plus-cl" else str(2 ** 64)))
        if framing == "te-bare-lf":
            raw_body = raw_body.replace(b"\r\n", b"\n")
    target = path + ("?" + query if query or rng.random() < 0.9 else "")
    raw = render_request(method, target, hdrs, raw_body, version, eol) + tail
    if rng.random() < 0.25:
        raw = case.mut.mutate(raw)
    ending = rng.choice(["read", "read", "read", "half-close", "rst-early", "rst-late"])
    try:
        conn = Conn(case, 3.0)
    except OSError as exc:
        case.note(f"connect failed: {exc!r}")
        return
    if ending == "rst-early":
        conn.deliver(raw[:rng.randrange(max(1, len(raw)))], "http (cut)")
        conn.close(abrupt=True)
    else:
        conn.deliver(raw, "http")
        if ending == "half-close":
            conn.shutdown_write()
        timeout = 2.5 if template == "get" else 1.2
        got = conn.read_for(timeout, None if ending == "half-close" else _first_response_complete)
        responses, _ = parse_responses(got)
        check_responses(case, responses)
        case.note(f"statuses {[r.status for r in responses]}; eof={conn.eof}")
        conn.close(abrupt=ending == "rst-late")
    if live is not None and rng.random() < 0.5:
        live.close()


def chunked_body(rng: random.Random, body: bytes, framing: str) -> bytes:
    def chunks(parts: Iterable[bytes]) -> bytes:
        return b"".join(f"{len(p):x}".encode() + b"\r\n" + p + b"\r\n" for p in parts if p)

    n = len(body)
    cut = rng.randint(1, max(1, n - 1)) if n > 1 else n
    parts = [body[:cut], body[cut:]]
    if framing in ("te", "te-plus-cl", "te-gzip", "te-chunked-gzip", "te-identity", "te-bare-lf", "te-overflow-cl"):
        return chunks(parts) + b"0\r\n\r\n"
    if framing == "te-tiny":
        return chunks(body[i:i + 1] for i in range(n)) + b"0\r\n\r\n"
    if framing == "te-bad-hex":
        return b"zz\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "te-short":
        return f"{n + 50:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if framing == "te-long":
        return f"{max(0, n - 3):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if framing == "te-no-crlf":
        return f"{n:x}\r\n".encode() + body + b"0\r\n\r\n"
    if framing == "te-ext":
        return f"{n:x};name=value;q=\"x\"\r\n".encode() + body + b"\r\n0;last\r\n\r\n"
    if framing == "te-long-ext":
        return f"{n:x};".encode() + b"e" * 10000 + b"\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "te-huge":
        return b"ffffffffffffffff\r\n" + body
    if framing == "te-17-digits":
        return b"0" * 16 + b"1a\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "te-negative":
        return b"-5\r\n" + body + b"\r\n0\r\n\r\n"
    if framing == "te-no-end":
        return chunks(parts)
    if framing == "te-zero-no-crlf":
        return chunks(parts) + b"0\r\n"
    if framing == "te-trailers":
        return chunks(parts) + b"0\r\nX-Trailer: 1\r\nX-Other: " + b"t" * 5000 + b"\r\n\r\n"
    if framing == "te-space":
        return f" {n:x} \r\n".encode() + body + b"\r\n0\r\n\r\n"
    if framing == "te-0x":
        return f"0x{n:x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    if framing == "te-multi-zero":
        return chunks(parts) + b"0\r\n\r\n0\r\n\r\n"
    return chunks(parts) + b"0\r\n\r\n"


def gen_eio_payload(case: Case, gen: Gen) -> tuple[bytes, bool]:
    """An Engine.IO polling payload and whether it is valid."""
    rng = case.rng
    mode = rng.choice(["valid", "valid", "mixed", "count", "separators", "binary", "types", "mutated"])
    if mode in ("valid", "mutated"):
        parts: list[str] = []
        for _ in range(rng.randint(1, 5)):
            for m in gen.valid():
                parts.append("4" + m if isinstance(m, str) else "b" + base64.b64encode(m).decode())
            if rng.random() < 0.2:
                parts.append(rng.choice(["3", "6"]))
        payload = SEP.join(parts).encode()
        if mode == "mutated":
            gen.acks.expected.clear()
            return case.mut.mutate(payload), False
        return payload, True
    gen.acks.expected.clear()
    if mode == "count":
        unit = rng.choice(["6", "3", "", "4", '42["echo"]', "b", "b" + "A" * 8, "4" + "x" * 100])
        count = rng.choice([999, 1000, 1001, 1500, 5000, 20000])
        return SEP.join([unit] * count).encode(), False
    if mode == "separators":
        return rng.choice([SEP * rng.randint(1, 50), SEP + "3", "3" + SEP, "3" + SEP * 2 + "3", SEP + SEP + "40",
                           '42["echo",1]' + SEP + SEP]).encode(), False
    if mode == "binary":
        b64 = base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))).decode()
        return ("4" + f"51-{gen.new_id()}" + dumps(["echo", {"_placeholder": True, "num": 0}]) + SEP +
                rng.choice(["b" + b64, "b" + b64.rstrip("="), "b" + b64 + "!", "b" + b64.replace("+", "-"),
                            "b" + b64[:len(b64) // 2] + " " + b64[len(b64) // 2:], "b", "b=", "b====",
                            "b" + "A" * 99999, "B" + b64, "bAA\nAA"])).encode(), False
    if mode == "types":
        return SEP.join(rng.choice(["0", "0{}", "1", "2", "2probe", "3probe", "5", "7", "9", "x", "", "\x00",
                                    "４", "4", "6", "3", "-1", "b", " 3"]) for _ in range(rng.randint(1, 6))).encode(), False
    parts = []
    for _ in range(rng.randint(2, 5)):
        msgs = gen.valid() if rng.random() < 0.5 else gen.invalid()
        for m in msgs:
            parts.append("4" + m if isinstance(m, str) else "b" + base64.b64encode(m).decode())
    gen.acks.expected.clear()
    return SEP.join(parts).encode(), False


def case_polling(case: Case) -> None:
    rng = case.rng
    nsp = rng.choice(["/", "/", "/", "/other", None])
    sess = Polling(case)
    if not sess.open(nsp=nsp, wait=nsp is not None):
        return
    acks = AckTracker(case, nsp or "/")
    gen = Gen(case, acks, nsp or "/")
    payload, valid = gen_eio_payload(case, gen)
    if nsp is None:
        valid = False
        acks.expected.clear()
    follow = rng.choice(["poll", "poll", "concurrent-post", "concurrent-get", "close", "abandon", "chunked"])
    if follow == "concurrent-post":
        t = threading.Thread(target=sess.post, args=(payload,), daemon=True)
        t.start()
        sess.post(payload)
        t.join(5)
        valid = False
    elif follow == "concurrent-get":
        t = threading.Thread(target=sess.get, args=(2.5,), daemon=True)
        t.start()
        time.sleep(0.01)
        sess.get(2.5)
        sess.post(payload)
        t.join(5)
        valid = False
    elif follow == "chunked":
        raw = render_request("POST", f"{PATH}?{sess.query()}",
                             [("Host", f"{case.fz.host}:{case.fz.port}"), ("Transfer-Encoding", "chunked"),
                              ("Connection", "close")], chunked_body(rng, payload, "te"))
        responses, conn = http_exchange(case, raw, label="POST chunked", deliver=None)
        if conn:
            conn.close()
        if responses and responses[0].status not in (200, 400, 413):
            case.finding("http-status", f"chunked POST answered {responses[0].status}")
    else:
        status = sess.post(payload, deliver=None)
        case.note(f"POST -> {status}")
        if valid and status != 200:
            case.finding("refused-valid", f"a valid payload was answered {status}")
    if valid and acks.expected:
        pfx = "" if (nsp or "/") == "/" else f"{nsp},"

        def on_packets(p: Any) -> bool:
            if isinstance(p, str):
                acks.feed("text", p)
            elif isinstance(p, bytes):
                acks.feed("binary", p)
            while acks.questions:  # the server's "question" (from "ask") waits for its answer
                q = acks.questions.pop(0)
                if q.id is not None:
                    sess.post(("4" + f"3{pfx}{q.id}" + json.dumps(q.data[1:], separators=(",", ":"))).encode())
            return not acks.missing()

        sess.poll_until(on_packets, 6.0)
        acks.check("polling")
    elif follow == "poll":
        sess.get(rng.choice((0.3, 1.0, 2.5)))
    if follow != "abandon":
        sess.close()


def case_sio(case: Case) -> None:
    rng = case.rng
    nsp = rng.choice(["/", "/", "/", "/other", "/other", None])
    mode = rng.choice(["valid", "valid", "invalid", "mixed", "mutated", "unsafe", "unsafe"])
    ws = ws_sio_open(case, nsp)
    if ws is None:
        return
    acks = AckTracker(case, nsp or "/")
    gen = Gen(case, acks, nsp or "/")
    case.fz.count(f"sio mode {mode}" + ("" if nsp else " (no CONNECT)"))
    all_valid = nsp is not None
    for _ in range(rng.randint(1, 8)):
        if mode == "valid" or (mode == "mixed" and rng.random() < 0.6):
            msgs = gen.valid()
        elif mode == "unsafe":
            msgs = gen.unsafe() if rng.random() < 0.7 else gen.valid()
            all_valid = False
        elif mode == "mutated":
            msgs = gen.mutated()
            all_valid = False
        else:
            msgs = gen.invalid()
            all_valid = False
        for m in msgs:
            if not ws.send(("4" + m) if isinstance(m, str) else m):
                break
    if not all_valid:
        acks.expected.clear()
    if mode != "unsafe" or nsp is None:
        acks.answer_or_close.clear()
    waiting = bool(acks.expected or acks.answer_or_close)
    deadline = time.monotonic() + (6.0 if waiting else rng.choice((0.2, 0.5, 1.0)))
    while time.monotonic() < deadline:
        msg = ws.next(deadline - time.monotonic())
        if msg is None:
            break
        acks.feed(*msg)
        answer_questions(case, ws, acks, nsp or "/", proper=waiting)
        if waiting and not acks.missing():
            break
    if acks.expected:
        if ws.closed or (ws.conn and ws.conn.eof):
            case.finding("closed-valid", f"the server closed a connection that sent only valid packets "
                                         f"(close code {ws.close_code})")
        acks.check("websocket")
    if acks.answer_or_close and not (ws.closed or (ws.conn and ws.conn.eof)):
        for ack_id in sorted(acks.answer_or_close - set(acks.got)):
            case.finding("dropped", f"ack {ack_id}: a well-formed event carrying a value JSON does not have "
                                    f"(NaN, Infinity, 1e999, a lone surrogate...) was neither answered nor refused")
    ws.close(abrupt=rng.random() < 0.3)


INVALID_FRAMES = ["rsv", "opcode", "unmasked", "ctl-fragmented", "ctl-long", "cont-start", "text-in-fragmented",
                  "bad-utf8", "bad-utf8-split", "close-bad-code", "close-1byte", "close-bad-reason", "huge-64",
                  "msb-64", "over-max", "binary-no-header"]


def bad_frame(case: Case, kind: str) -> bytes:
    rng = case.rng
    text = b'42["echo","frame"]'
    if kind == "rsv":
        return ws_frame(text, 1, rsv=rng.randint(1, 7), rng=rng)
    if kind == "opcode":
        return ws_frame(text, rng.choice((3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF)), rng=rng)
    if kind == "unmasked":
        return ws_frame(text, 1, mask=False)
    if kind == "ctl-fragmented":
        return ws_frame(b"ping", rng.choice((8, 9, 10)), fin=False, rng=rng)
    if kind == "ctl-long":
        return ws_frame(b"p" * rng.choice((126, 200, 1000)), rng.choice((9, 10)), rng=rng)
    if kind == "cont-start":
        return ws_frame(text, 0, fin=rng.random() < 0.5, rng=rng)
    if kind == "text-in-fragmented":
        return ws_frame(b"42[", 1, fin=False, rng=rng) + ws_frame(text, 1, rng=rng)
    if kind == "bad-utf8":
        return ws_frame(b"4" + rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]),
                        1, rng=rng)
    if kind == "bad-utf8-split":
        return ws_frame(b"42[\"\xe2", 1, fin=False, rng=rng) + ws_frame(b"\x28\xa1\"]", 0, rng=rng)
    if kind == "close-bad-code":
        code = rng.choice((0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535))
        return ws_frame(struct.pack("!H", code) + b"bye", 8, rng=rng)
    if kind == "close-1byte":
        return ws_frame(b"\x03", 8, rng=rng)
    if kind == "close-bad-reason":
        return ws_frame(struct.pack("!H", 1000) + b"\xff\xfe", 8, rng=rng)
    if kind == "huge-64":
        return ws_frame(text, rng.choice((1, 2)), declared=rng.choice((2 ** 32, 2 ** 40, 2 ** 63 - 1)), form=64, rng=rng)
    if kind == "msb-64":
        return ws_frame(text, 1, declared=2 ** 63 + len(text), form=64, rng=rng)
    if kind == "over-max":
        return ws_frame(b"4" + b"x" * min(case.fz.max_payload, 4_000_000), rng.choice((1, 2)), rng=rng)
    return ws_frame(b"\x01\x02", 2, rng=rng)  # binary-no-header: a protocol error one level up


def case_frames(case: Case) -> None:
    """Hand-made WebSocket frames, cut into random TCP writes."""
    rng = case.rng
    connected = rng.random() < 0.85
    ws = ws_sio_open(case, "/" if connected else None)
    if ws is None:
        return
    acks = AckTracker(case)
    gen = Gen(case, acks)
    mode = rng.choice(["valid", "valid", "invalid", "invalid", "abrupt", "close"])
    stream = b""
    pings: list[bytes] = []
    violation = False
    ambiguous = False  # frames the RFC frowns upon but a server may accept: no expectation
    if not connected:
        case.note("no CONNECT: the first event is a protocol error")
    for i in range(rng.randint(1, 6)):
        if mode == "invalid" and not violation and (rng.random() < 0.4 or i == 2):
            kind = rng.choice(INVALID_FRAMES)
            case.note(f"invalid frame: {kind}")
            stream += bad_frame(case, kind)
            violation = True
            continue
        r = rng.random()
        if r < 0.15:
            payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 8, 125))))
            stream += ws_frame(payload, 9, rng=rng)
            if not violation:
                pings.append(payload)
            continue
        if r < 0.2:
            stream += ws_frame(b"unsolicited", 10, rng=rng)
            continue
        if r < 0.25:
            stream += ws_frame(b"3", 1, rng=rng)  # Engine.IO pong
            continue
        if 0.3 <= r < 0.33:
            # the payload masked with another key than the one in the header: garbage
            # that may or may not happen to be valid
            ambiguous = True
            text = ("4" + sio_text("/", gen.new_id(), ["echo", "bad mask"])).encode()
            good = ws_frame(text, 1, mask_key=b"\x01\x02\x03\x04")
            stream += good[:2] + b"\x05\x06\x07\x08" + good[6:]
            case.note("bad mask")
            continue
        if r < 0.3:
            # a length in a longer form than needed (RFC 6455: "the minimal number of bytes
            # MUST be used"): refusing and accepting are both fine
            ambiguous = True
            text = ("4" + sio_text("/", gen.new_id(), ["echo", "long form"])).encode()
            stream += ws_frame(text, 1, form=rng.choice((16, 64)), rng=rng)
            case.note("non-minimal length")
            continue
        ack_id = gen.new_id()
        args = [rand_json(rng, binary=rng.random() < 0.3) for _ in range(rng.randint(0, 2))]
        msgs = sio_event("/", ack_id, ["echo", *args])
        if not connected and not violation:
            violation = True  # an event before CONNECT
            pings = []
        if violation:
            acks.forbidden.add(ack_id)
        else:
            acks.expected[ack_id] = args
        frag = rng.choice((1, 1, 2, 3, 8, 50))
        if rng.random() < 0.1:
            stream += ws_frame(("4" + msgs[0]).encode() if isinstance(msgs[0], str) else msgs[0],
                               1 if isinstance(msgs[0], str) else 2, mask_key=b"\0\0\0\0")  # a zero key is valid
            msgs = msgs[1:]
        for m in msgs:
            stream += ws_message_frames("4" + m if isinstance(m, str) else m, rng, frag, interleave=True,
                                        pings=None if violation else pings)
    if mode == "close":
        stream += ws_frame(struct.pack("!H", rng.choice((1000, 1001, 3000, 4999))) + b"bye", 8, rng=rng)
        stream += ws_message_frames("4" + sio_text("/", 999_999, ["echo", 1]), rng)
        acks.forbidden.add(999_999)
        acks.expected.clear()
        pings = []
        violation = True
    if mode == "abrupt":
        cut = rng.randrange(max(1, len(stream)))
        ws.send_raw(stream[:cut], "frames (cut)", None)
        ws.close(abrupt=rng.random() < 0.5)
        return
    ws.send_raw(stream, "frames", None)
    if violation or ambiguous:
        acks.expected.clear()
        pings = [] if ambiguous else pings
    deadline = time.monotonic() + (4.0 if (acks.expected or pings or violation) else 0.5)
    pongs: list[bytes] = []
    while time.monotonic() < deadline:
        msg = ws.next(deadline - time.monotonic())
        if msg is None:
            break
        if msg[0] == "pong":
            pongs.append(msg[1])
        elif msg[0] == "close":
            continue
        else:
            acks.feed(*msg)
        if not violation and not acks.missing() and len(pongs) >= len(pings):
            break
    if violation:
        if not ws.wait_eof(max(0.5, deadline - time.monotonic())):
            case.finding("not-closed", "the server kept the connection open after a protocol violation "
                                       f"({case.notes[-1:]})")
    elif not ambiguous:
        if ws.closed or (ws.conn is not None and ws.conn.eof):
            case.finding("closed-valid", f"valid frames, but the server closed the connection (code {ws.close_code})")
        acks.check("frames")
        if pongs[:len(pings)] != pings:
            case.finding("wrong-pong", f"pings {pings!r:.200} answered with pongs {pongs!r:.200}")
    ws.close(abrupt=rng.random() < 0.3)


def case_upgrade(case: Case) -> None:
    rng = case.rng
    sess = Polling(case)
    if not sess.open(nsp="/", wait=True):
        return
    mode = rng.choice(["valid", "valid", "mutated", "abandon", "double", "no-probe", "poll-during"])
    ws = WS(case, f"EIO=4&transport=websocket&sid={sess.sid}")
    if not ws.ok:
        ws.close()
        sess.close()
        return
    poller = None
    if mode == "poll-during":
        poller = threading.Thread(target=sess.get, args=(3.0,), daemon=True)
        poller.start()
    probe = "2probe"
    if mode == "mutated":
        probe = case.mut.mutate_text(probe)
    if mode != "no-probe":
        ws.send(probe)
    if mode == "double":
        ws2 = WS(case, f"EIO=4&transport=websocket&sid={sess.sid}")
        ws2.send("2probe")
        ws2.wait_eof(1.0)
        ws2.close()
    answer = ws.wait_text(lambda t: True, 2.0)
    if mode == "abandon":
        ws.close(abrupt=rng.random() < 0.5)
        sess.close()
        return
    upgrade = "5" if mode != "mutated" else case.mut.mutate_text("5")
    ws.send(upgrade)
    if mode in ("valid", "poll-during") and answer == "3probe":
        acks = AckTracker(case)
        gen = Gen(case, acks)
        args = [rand_json(rng)]
        ack_id = gen.new_id()
        acks.expected[ack_id] = args
        ws.send("4" + sio_text("/", ack_id, ["echo", *args]))
        deadline = time.monotonic() + 4.0
        while acks.missing() and time.monotonic() < deadline:
            msg = ws.next(deadline - time.monotonic())
            if msg is None:
                break
            acks.feed(*msg)
        acks.check("after upgrade")
    elif mode == "valid":
        case.finding("upgrade", f"probe answered {answer!r} instead of 3probe")
    if poller is not None:
        poller.join(5)
    ws.close(abrupt=rng.random() < 0.3)


def case_capture(case: Case) -> None:
    """Captured client traffic with live sids, mutated."""
    fz, rng = case.fz, case.rng
    if not fz.corpus:
        return
    item = rng.choice(fz.corpus)
    data = item["data"]
    if item["sids"]:
        sess = Polling(case)
        if sess.open(nsp=rng.choice(("/", None)), wait=False) and sess.sid:
            for old in item["sids"]:
                data = data.replace(old.encode(), sess.sid.encode())
    # keep the request heads mostly intact: most mutations land after the first head
    head_end = data.find(b"\r\n\r\n")
    if head_end > 0 and rng.random() < 0.7:
        data = data[:head_end + 4] + case.mut.mutate(data[head_end + 4:], rng.randint(1, 10))
    else:
        data = case.mut.mutate(data, rng.randint(1, 10))
    try:
        conn = Conn(case, 3.0)
    except OSError as exc:
        case.note(f"connect failed: {exc!r}")
        return
    conn.deliver(data, f"captured {item['kind']} (mutated)")
    if rng.random() < 0.3:
        conn.shutdown_write()
    raw = conn.read_for(rng.choice((0.3, 1.0, 2.0)))
    responses, _ = parse_responses(raw)
    check_responses(case, responses)
    case.note(f"statuses {[r.status for r in responses]}")
    conn.close(abrupt=rng.random() < 0.3)


def case_victim(case: Case, raw_value: str | None = None) -> None:
    """A long-polling client in a room; another client broadcasts to the room (valid data,
    binary, or values JSON does not have). The victim must get what was valid, never an
    error, and stay usable. ``raw_value``: broadcast this JSON text, and expect the victim
    to get what Python's parser makes of it."""
    rng = case.rng
    room = f"victim-{case.id}"
    victim = Polling(case)
    if not victim.open(nsp="/", wait=True):
        return
    acks = AckTracker(case)

    def until_ack(ack_id: int, timeout: float = 4.0) -> bool:
        def seen(p: Any) -> bool:
            pkt = acks.feed("binary" if isinstance(p, bytes) else "text", p)
            if isinstance(p, str) and p == "1":
                return True
            if pkt is not None and pkt.type in (2, 5) and isinstance(pkt.data, list) and pkt.data[:1] == ["chat"]:
                events.append(pkt.data[1:])
            return ack_id in acks.got

        victim.poll_until(seen, timeout)
        return ack_id in acks.got

    events: list[Any] = []
    victim.post(("4" + sio_text("/", 1, ["join", room])).encode())
    if not until_ack(1) or acks.got[1] != [True]:
        case.note(f"join not acknowledged: {acks.got}")
        victim.close()
        return
    sender = ws_sio_open(case, "/")
    if sender is None:
        victim.close()
        return
    valid = rng.random() < 0.5
    if raw_value is not None:
        valid = True
        value = json.loads(raw_value)
        sender.send("4" + f'2["broadcast","{room}",{raw_value}]')
    elif valid:
        value = rand_json(rng, binary=rng.random() < 0.4)
        for m in sio_event("/", None, ["broadcast", room, value]):
            sender.send("4" + m if isinstance(m, str) else m)
    else:
        value = rng.choice(Gen.UNSAFE_VALUES)
        sender.send("4" + f'2["broadcast","{room}",{value}]')
    case.note(f"broadcast {'valid' if valid else 'unsafe'} {str(value)[:80]!r}")
    time.sleep(0.2)
    # the victim must still work: an echo after the broadcast, and the broadcast itself when valid
    victim.post(("4" + sio_text("/", 2, ["echo", "still here"])).encode())
    ok = until_ack(2, 5.0)
    if not ok:
        case.finding("victim-disturbed", f"a polling client lost its session or its ack after another client "
                                         f"broadcast {'valid data' if valid else 'an unsafe value'} to its room "
                                         f"(closed={victim.closed})")
    elif valid and events != [[value]] and not (raw_value is not None and events == []):
        # (a raw value may be refused: the sender is closed and nothing reaches the room)
        case.finding("broadcast", f"the room member got {events!r:.300} for a broadcast of {value!r:.300}")
    sender.close()
    victim.close()


CASES: dict[str, Callable[[Case], None]] = {
    "http": case_http, "polling": case_polling, "sio": case_sio, "frames": case_frames,
    "upgrade": case_upgrade, "capture": case_capture, "victim": case_victim,
}


# =========================================================================== regressions

def _reg_unsafe_ack(raw_value: str, exact: bool) -> Callable[[Case], None]:
    """An echo with an ack carrying ``raw_value``: answered (with what Python's parser
    makes of it, when ``exact``) or refused by closing; never silence or a traceback."""
    def run(case: Case) -> None:
        ws = ws_sio_open(case, "/")
        if ws is None:
            return
        acks = AckTracker(case)
        acks.answer_or_close.add(7)
        ws.send("4" + f'27["echo",{raw_value}]')
        deadline = time.monotonic() + 4.0
        while acks.missing() and time.monotonic() < deadline:
            msg = ws.next(deadline - time.monotonic())
            if msg is None:
                break
            acks.feed(*msg)
        if 7 in acks.got:
            if exact and acks.got[7] != [json.loads(raw_value)]:
                case.finding("wrong-ack", f"echo of {raw_value} answered {acks.got[7]!r}")
        elif not (ws.closed or (ws.conn and ws.conn.eof)):
            case.finding("dropped", f"an echo of {raw_value} with an ack was neither answered nor refused")
        ws.close()
    return run


def _reg_raw_http(raw: Callable[[Case], bytes], half_close: bool = False, hold: float = 0.0) -> Callable[[Case], None]:
    """Raw bytes (built once a polling session exists: ``SID`` is replaced) on a new
    connection; the server must not answer 5xx (checked on every response)."""
    def run(case: Case) -> None:
        sess = Polling(case)
        if not sess.open(nsp=None):
            return
        data = raw(case).replace(b"SID", (sess.sid or "").encode())
        conn = Conn(case, 3.0)
        conn.send(data, "http")
        if hold:
            time.sleep(hold)
        if half_close:
            conn.shutdown_write()
        got = conn.read_for(2.0, None if half_close else _first_response_complete)
        responses, _ = parse_responses(got)
        check_responses(case, responses)
        case.note(f"statuses {[r.status for r in responses]}")
        conn.close()
        sess.close()
    return run


def _host(case: Case) -> bytes:
    return f"Host: {case.fz.host}:{case.fz.port}\r\n".encode()


def _ws_head(case: Case, extra: bytes) -> bytes:
    return (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" + _host(case) +
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")


#: Inputs that found bugs, replayed at the start of every run (in a thread of their own,
#: beside the random cases), so that a run fails on them as long as they are not fixed.
#: Replay one: ``--replay regression-NAME``.
REGRESSIONS: dict[str, Callable[[Case], None]] = {
    # JSON that Python's parser accepts and its encoder refuses: the ack raised in the worker
    "nan-ack": _reg_unsafe_ack("NaN", exact=False),
    "infinity-ack": _reg_unsafe_ack("-Infinity", exact=False),
    "1e999-ack": _reg_unsafe_ack("1e999", exact=False),
    # a lone surrogate (JSON escape) echoed back: UnicodeEncodeError when framing
    "surrogate-ack": _reg_unsafe_ack('"\\ud800"', exact=True),
    # ... and broadcast to a long-polling member: its GET answered 500, packets lost
    "surrogate-broadcast-to-polling": lambda case: case_victim(case, raw_value='"x\\udc00"'),
    # a POST whose body ends before its Content-Length (client gone): 500 and a traceback
    "truncated-post-body": _reg_raw_http(
        lambda case: (b"POST /socket.io/?EIO=4&transport=polling&sid=SID HTTP/1.1\r\n" + _host(case) +
                      b"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 100\r\n\r\n42["),
        half_close=True),
    "truncated-chunked-body": _reg_raw_http(
        lambda case: (b"POST /socket.io/?EIO=4&transport=polling&sid=SID HTTP/1.1\r\n" + _host(case) +
                      b"Transfer-Encoding: chunked\r\n\r\n10\r\n42["), half_close=True),
    # a CORS preflight whose Access-Control-Request-Headers is folded (obs-fold): 500
    "preflight-folded-header": _reg_raw_http(
        lambda case: (b"OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n" + _host(case) +
                      b"Access-Control-Request-Headers: content-type\r\n x-folded\r\nConnection: close\r\n\r\n")),
    # ... or an Origin header so folded, reflected in Access-Control-Allow-Origin (cors "*")
    "folded-origin": _reg_raw_http(
        lambda case: (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n" + _host(case) +
                      b"Origin: http://a.example\r\n x-folded\r\nConnection: close\r\n\r\n")),
    # a WebSocket handshake with a body (chunked, or a Content-Length): after the session,
    # pywsgi reads the rest of the body from the reader the handler took away
    "websocket-handshake-with-chunked-body": _reg_raw_http(
        lambda case: _ws_head(case, b"Transfer-Encoding: chunked\r\n"), hold=0.3),
    "websocket-handshake-with-content-length": _reg_raw_http(
        lambda case: _ws_head(case, b"Content-Length: 5\r\n"), hold=0.3),
    # transport=websocket without an upgrade: a warning that blames the deployment
    # over 100 header lines: http.client's HTTPException, which pywsgi printed with a
    # traceback and logged at ERROR
    "over-100-headers": _reg_raw_http(
        lambda case: (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n" + _host(case) +
                      b"".join(b"X-H%d: v\r\n" % i for i in range(120)) + b"Connection: close\r\n\r\n")),
    # a version with one number ("HTTP/1"): an IndexError in pywsgi, logged at ERROR
    "http-version-one-number": _reg_raw_http(
        lambda case: (b"GET /socket.io/?EIO=4&transport=polling HTTP/1\r\n" + _host(case) +
                      b"Connection: close\r\n\r\n")),
    "websocket-transport-without-upgrade": _reg_raw_http(
        lambda case: (b"POST /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" + _host(case) +
                      b"Content-Length: 2\r\nConnection: close\r\n\r\n40")),
}


# =========================================================================== capture

class RecordingProxy:
    """A TCP proxy that records what clients send (and the sids the server hands out)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.streams: list[dict[str, Any]] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True, name="fuzz-proxy").start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            rec = {"up": bytearray(), "down": bytearray()}
            self.streams.append(rec)
            for src, dst, key in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, rec[key]), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, buf: bytearray) -> None:
        src.settimeout(None)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.lsock.close()


def capture_corpus(fz: "Fuzzer") -> list[dict[str, Any]]:
    """Run python-socketio clients through a recording proxy: their requests and frames
    are the corpus of valid traffic that the ``capture`` cases mutate."""
    import socketio

    proxy = RecordingProxy(fz.host, fz.port)
    url = f"http://127.0.0.1:{proxy.port}"
    for transports in (["websocket"], ["polling"], None):
        client = socketio.Client(reconnection=False, handle_sigint=False)
        client.on("question", lambda v=None: v)
        try:
            client.connect(url, transports=transports, wait_timeout=5)
            client.call("echo", {"a": [1, "two", None], "b": b"\x00\x01bin"}, timeout=5)
            client.call("join", "capture-room", timeout=5)
            client.emit("broadcast", ("capture-room", "hello"))
            client.call("ask", 7, timeout=5)
            client.call("echo", "x" * 300, timeout=5)
            time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - capture is best effort: synthetic corpus then
            fz.log(f"capture with {transports}: {exc!r}")
        finally:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001
                pass
    time.sleep(0.3)
    proxy.close()
    corpus = []
    for rec in proxy.streams:
        up = bytes(rec["up"])
        if not up:
            continue
        sids = sorted(set(re.findall(r'"sid":"([A-Za-z0-9_-]+)"', bytes(rec["down"]).decode("latin-1"))) |
                      set(re.findall(r"sid=([A-Za-z0-9_-]+)", up.decode("latin-1"))))
        kind = "ws" if b"Upgrade: websocket" in up or b"upgrade: websocket" in up.lower() else "http"
        corpus.append({"kind": kind, "data": up[:200_000], "sids": sids})
    return corpus


def synthetic_corpus(fz: "Fuzzer") -> list[dict[str, Any]]:
    rng = random.Random(fz.seed)
    host = f"{fz.host}:{fz.port}"
    ws_head = render_request("GET", f"{PATH}?EIO=4&transport=websocket",
                             [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                              ("Sec-WebSocket-Key", ws_key(rng)), ("Sec-WebSocket-Version", "13")])
    messages: list[str | bytes] = [
        "40", '420["echo",{"a":1}]', "451-1" + dumps(["echo", {"_placeholder": True, "num": 0}]), b"\x00\x01",
        '42["join","r1"]', "3"]
    frames = b"".join(ws_message_frames(m, rng) for m in messages)
    post = render_request("POST", f"{PATH}?EIO=4&transport=polling&sid=SIDSIDSID",
                          [("Host", host), ("Content-Type", "text/plain;charset=UTF-8"), ("Content-Length", "20")],
                          b'40\x1e421["echo","poll"]')
    return [{"kind": "ws", "data": ws_head + frames, "sids": []},
            {"kind": "http", "data": post, "sids": ["SIDSIDSID"]}]


# =========================================================================== honest clients

class Honest:
    """Common part of the honest clients: a loop of echo / ask / broadcast with checks."""

    def __init__(self, fz: "Fuzzer", name: str, transport: str) -> None:
        self.fz = fz
        self.name = name
        self.transport = transport
        self.rng = random.Random(f"{fz.seed}-honest-{name}")
        self.errors: list[str] = []
        self.error_count = 0
        self.sent_broadcasts: list[int] = []
        self.ops = 0
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def error(self, msg: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {self.name}: {msg}")
        self.fz.log(f"HONEST CLIENT ERROR {self.name}: {msg}")

    def final_check(self) -> None:
        """Anything the client recorded that is a failure (called before it is closed)."""

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, daemon=True, name=f"honest-{self.name}")
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(15)
            if self.thread.is_alive():
                self.error("the client loop did not stop within 15 s (a call hangs)")

    def payload(self) -> Any:
        return {"from": self.name, "n": self.ops,
                "v": rand_json(self.rng, node=self.node, binary=self.rng.random() < 0.3)}

    node = False

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.ops += 1
            try:
                if self.ops % 4 == 0:
                    k = len(self.sent_broadcasts) + 1
                    ok = self.call("broadcast", HONEST_ROOM, {"from": self.name, "n": k})
                    if ok != [True]:
                        self.error(f"broadcast acked {ok!r}")
                    self.sent_broadcasts.append(k)
                elif self.ops % 7 == 0:
                    value = rand_json(self.rng, node=self.node)
                    if value is None:  # an answer of None is an ack without arguments
                        value = "none"
                    got = self.call("ask", value)
                    if got != [value]:
                        self.error(f"ask({value!r:.100}) answered {got!r:.200}")
                else:
                    value = self.payload()
                    got = self.call("echo", value)
                    if got != [value]:
                        self.error(f"echo({value!r:.200}) answered {got!r:.300}")
            except Exception as exc:  # noqa: BLE001 - every failure of an honest client is a finding
                self.error(f"{type(exc).__name__}: {exc}"[:500])
                if not self.connected():
                    return
                time.sleep(0.2)
            time.sleep(0.02)

    # -- implemented by the subclasses
    def connect(self) -> None:
        raise NotImplementedError

    def call(self, event: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    def connected(self) -> bool:
        raise NotImplementedError

    def broadcasts_received(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def disconnects(self) -> list[str]:
        raise NotImplementedError

    def engine_sid(self) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class HonestPy(Honest):
    def __init__(self, fz: "Fuzzer", name: str, transport: str) -> None:
        super().__init__(fz, name, transport)
        import socketio

        self.sio = socketio.Client(reconnection=False, handle_sigint=False)
        self._received: list[tuple[str, int]] = []
        self._disconnects: list[str] = []
        self.closing = False

        @self.sio.on("chat")
        def chat(msg: Any = None) -> None:
            if isinstance(msg, dict) and isinstance(msg.get("from"), str) and isinstance(msg.get("n"), int):
                self._received.append((msg["from"], msg["n"]))

        @self.sio.on("question")
        def question(value: Any = None) -> Any:
            return value

        @self.sio.event
        def disconnect(*args: Any) -> None:
            if not self.closing:
                self._disconnects.append(repr(args))
                self.error(f"disconnected by the server or the transport: {args!r}")

    def connect(self) -> None:
        transports = {"websocket": ["websocket"], "polling": ["polling"], "upgrade": None}[self.transport]
        self.sio.connect(self.fz.url, transports=transports, wait_timeout=10)
        if self.transport == "upgrade":
            deadline = time.monotonic() + 5
            while self.sio.transport() != "websocket" and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.sio.call("join", HONEST_ROOM, timeout=10) is not True:
            raise RuntimeError("join failed")

    def call(self, event: str, *args: Any) -> list[Any]:
        result = self.sio.call(event, args if len(args) > 1 else args[0], timeout=15)
        # python-socketio returns one ack argument as is, several as a tuple
        return list(result) if isinstance(result, tuple) else [result]

    def connected(self) -> bool:
        return bool(self.sio.connected)

    def broadcasts_received(self) -> list[tuple[str, int]]:
        return list(self._received)

    def disconnects(self) -> list[str]:
        return list(self._disconnects)

    def engine_sid(self) -> str | None:
        return getattr(self.sio.eio, "sid", None)

    def close(self) -> None:
        self.closing = True
        try:
            self.sio.disconnect()
        except Exception:  # noqa: BLE001
            pass


class HonestNode(Honest):
    node = True

    def __init__(self, fz: "Fuzzer", clients: Any, name: str, transport: str) -> None:
        super().__init__(fz, name, transport)
        self.clients = clients

    def connect(self) -> None:
        self.clients.connect(self.name, self.fz.url, transports=[self.transport], reconnection=False, timeout=10)
        self.clients.ack_with(self.name, "question", echo=True)
        if self.clients.call(self.name, "join", HONEST_ROOM, timeout=10) != [True]:
            raise RuntimeError("join failed")

    def call(self, event: str, *args: Any) -> list[Any]:
        return self.clients.call(self.name, event, *args, timeout=15)

    def connected(self) -> bool:
        try:
            return bool(self.clients.state(self.name).get("connected"))
        except Exception:  # noqa: BLE001
            return False

    def broadcasts_received(self) -> list[tuple[str, int]]:
        out = []
        for args in self.clients.messages(self.name, "chat"):
            msg = args[0] if args else None
            if isinstance(msg, dict) and isinstance(msg.get("from"), str) and isinstance(msg.get("n"), int):
                out.append((msg["from"], msg["n"]))
        return out

    def disconnects(self) -> list[str]:
        return [json.dumps({k: v for k, v in e.items() if k != "_t"}) for e in
                self.clients.events(self.name, "disconnect") + self.clients.events(self.name, "connect_error")]

    def final_check(self) -> None:
        for event in self.disconnects():
            self.error(f"disconnected: {event}")

    def engine_sid(self) -> str | None:
        try:
            return self.clients.state(self.name).get("engineId")
        except Exception:  # noqa: BLE001
            return None

    def close(self) -> None:
        try:
            self.clients.close(self.name)
        except Exception:  # noqa: BLE001
            pass


# =========================================================================== monitors

_TB_START = "Traceback (most recent call last):"
_PROGRAMMING_ERRORS = frozenset({"AttributeError", "TypeError", "NameError", "KeyError", "AssertionError",
                                 "UnboundLocalError", "RecursionError", "UnicodeEncodeError", "ValueError"})


class LogWatcher:
    """Tails the server log: tracebacks (and ERROR/CRITICAL lines, counted per logger)."""

    def __init__(self, fz: "Fuzzer", path: str) -> None:
        self.fz = fz
        self.path = path
        self.offset = 0
        self.partial = ""
        self.tracebacks: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self.levels: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, str] = {}
        self._tb: list[str] | None = None
        self._tb_exc = False
        self._prev = ""
        self._after: tuple[dict[str, Any], int] | None = None
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fuzz-log")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.scan()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            if not self.scan():
                self.flush()

    def scan(self) -> list[dict[str, Any]] | None:
        """Read what was added; returns the tracebacks completed by it (None: nothing new)."""
        with self._lock:
            return self._scan()

    def _scan(self) -> list[dict[str, Any]] | None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        if not data:
            return None
        self.offset += len(data)
        text = self.partial + data.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        done: list[dict[str, Any]] = []
        for line in lines:
            done.extend(self._line(line))
        return done

    def _line(self, line: str) -> list[dict[str, Any]]:
        done = self._line2(line)
        if self._tb is None:
            if self._after is not None:
                rec, left = self._after
                rec["context"] += "\n" + line
                self._after = (rec, left - 1) if left > 1 else None
            self._prev = line
        return done

    def _line2(self, line: str) -> list[dict[str, Any]]:
        done: list[dict[str, Any]] = []
        if self._tb is not None:
            if line.startswith(_TB_START):
                self._tb.append(line)  # a chained exception
                self._tb_exc = False
                return done
            if line.startswith((" ", "\t")) or (self._tb_exc and (
                    line == "" or line.startswith(("During handling", "The above exception")))):
                self._tb.append(line)
                return done
            if not self._tb_exc:
                self._tb.append(line)  # the exception line
                self._tb_exc = True
                return done
            done.extend(self._finish_tb())
        if line.startswith(_TB_START) or line.endswith(_TB_START):
            self._tb = [line]
            self._tb_exc = False
            return done
        m = re.match(r"\S+ \S+ \d+ (\S+) (WARNING|ERROR|CRITICAL) (.*)", line)
        if m:
            key = f"{m.group(2)} {m.group(1)}"
            self.levels[key] += 1
            self.samples.setdefault(key, line[:300])
        return done

    def flush(self) -> None:
        """Finish a traceback whose exception line has been read."""
        with self._lock:
            if self._tb is not None and self._tb_exc:
                self._finish_tb()

    def _finish_tb(self) -> list[dict[str, Any]]:
        tb, self._tb = self._tb, None
        if not tb:
            return []
        # the exception line: the last line that is not indented
        exc_lines = [line for line in tb[1:] if line and not line.startswith((" ", "\t", "During handling",
                                                                             "The above exception", _TB_START))]
        exc = exc_lines[-1] if exc_lines else "?"
        frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', "\n".join(tb))
        # socketio_sync frames, but not WebSocketHandler.handle, which only calls pywsgi's
        ours = [f for f in frames if "/socketio_sync/" in f[0] and "/tests/" not in f[0]
                and not (f[0].endswith("/wsgi/handler.py") and f[2] == "handle")]
        where = ours[-1] if ours else (frames[-1] if frames else ("?", "?", "?"))
        exc_type = exc.split(":")[0]
        signature = f"{exc_type} at {Path(where[0]).name}:{where[1]} in {where[2]}"
        # Without a socketio_sync frame, a traceback is gevent's way of logging a bad client
        # (resets, too many headers...), unless it is a programming error: pywsgi tripping
        # over state that socketio_sync changed (its WebSocket handler takes the reader away).
        ours_flag = bool(ours) or exc_type.rsplit(".", 1)[-1] in _PROGRAMMING_ERRORS
        rec = {"signature": signature, "text": "\n".join(tb), "socketio_sync": ours_flag, "t": time.time(),
               "context": self._prev}
        self._after = (rec, 3)  # the lines around a traceback name the session (access log, message)
        self.tracebacks.append(rec)
        self.fz.on_traceback(rec)
        return [rec]


class Monitor:
    """A fresh handshake every second; the server process and its memory."""

    def __init__(self, fz: "Fuzzer") -> None:
        self.fz = fz
        self.max_rss_kb = 0
        self.handshakes = 0
        self.failures = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fuzz-monitor")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        fails = 0
        while not self._stop.wait(1.0):
            fz = self.fz
            rss = fz.rss_kb()
            if rss is not None:
                self.max_rss_kb = max(self.max_rss_kb, rss)
            if not fz.server_alive():
                fz.add_finding(Finding("crash", "the server process is gone",
                                       detail=fz.suspects_text(time.time())))
                return
            try:
                fresh_handshake(fz, timeout=5.0)
                self.handshakes += 1
                fails = 0
            except Exception as exc:  # noqa: BLE001
                fails += 1
                self.failures += 1
                if fails == 2:
                    fz.add_finding(Finding("unresponsive", f"two fresh handshakes in a row failed: {exc!r}",
                                           detail=fz.suspects_text(time.time())))


def fresh_handshake(fz: "Fuzzer", timeout: float = 5.0) -> str:
    """A polling handshake, closed again at once (POST "1"); returns the sid."""
    r = request(fz.url, "GET", f"{PATH}?EIO=4&transport=polling", timeout=timeout)
    if r.status != 200 or not r.text.startswith("0"):
        raise AssertionError(f"handshake answered {r!r}")
    sid = json.loads(r.text[1:])["sid"]
    request(fz.url, "POST", f"{PATH}?EIO=4&transport=polling&sid={sid}", body="1", timeout=timeout)
    return sid


# =========================================================================== the fuzzer

@dataclass
class Report:
    seed: int
    seconds: float
    findings: list[Finding]
    cases: collections.Counter
    counters: collections.Counter
    max_rss_kb: int
    final_rss_kb: int | None
    settle_seconds: float | None
    final_stats: dict[str, Any] | None
    honest_ops: dict[str, int]
    log_levels: dict[str, int]
    log_samples: dict[str, str]
    corpus_file: str | None = None
    url: str = ""
    greenlets: tuple[int | None, int | None] = (None, None)

    @property
    def bugs(self) -> list[Finding]:
        return [f for f in self.findings if not f.note]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.note]

    @property
    def ok(self) -> bool:
        return not self.bugs

    def summary(self) -> str:
        """One line per finding that is not a note, and how to replay."""
        lines = [f.headline() for f in self.bugs]
        lines.append(f"seed {self.seed}; replay one case with: python -m tests.fuzz.live --spawn --replay CASE_ID"
                     + (f" --corpus {self.corpus_file}" if self.corpus_file else ""))
        return "\n".join(lines)

    def render(self) -> str:
        total = sum(self.cases.values())
        lines = [
            f"live fuzz: seed={self.seed} seconds={self.seconds:g} url={self.url}",
            f"  cases: {total} ({', '.join(f'{k} {v}' for k, v in sorted(self.cases.items()))})",
            f"  counters: {', '.join(f'{k}: {v}' for k, v in sorted(self.counters.items()))}",
            f"  honest client operations: {self.honest_ops}",
            f"  server RSS: max {self.max_rss_kb / 1024:.1f} MB, at the end "
            + (f"{self.final_rss_kb / 1024:.1f} MB" if self.final_rss_kb else "unknown"),
            f"  server greenlets: {self.greenlets[0]} with the honest clients before fuzzing, "
            f"{self.greenlets[1]} after",
            "  sessions back to the honest clients after: "
            + (f"{self.settle_seconds:.1f} s" if self.settle_seconds is not None else "NOT REACHED"),
            f"  final /stats: {json.dumps({k: v for k, v in (self.final_stats or {}).items() if k != 'session_ids'})}",
            f"  server log lines by level: {dict(self.log_levels)}",
        ]
        for key, sample in self.log_samples.items():
            lines.append(f"    e.g. {sample}")
        if self.notes:
            lines.append(f"NOTES (reported, not failures) ({len(self.notes)}):")
            for f in self.notes:
                lines.append(f.render())
        if self.bugs:
            lines.append(f"FINDINGS ({len(self.bugs)}):")
            for f in self.bugs:
                lines.append(f.render())
            lines.append(f"Replay the run: python -m tests.fuzz.live --spawn --seed {self.seed} "
                         f"--seconds {self.seconds:g}" + (f" --corpus {self.corpus_file}" if self.corpus_file else ""))
            lines.append("Replay one case: python -m tests.fuzz.live --spawn --replay CASE_ID"
                         + (f" --corpus {self.corpus_file}" if self.corpus_file else ""))
        else:
            lines.append("no failures")
        return "\n".join(lines)


class Fuzzer:
    """One fuzz run against ``url``: :meth:`run` returns a :class:`Report`.

    ``server_pid`` (death, VmRSS) and ``server_log`` (tracebacks) are optional;
    ``node_clients`` (a :class:`tests.jsclient.NodeClients`) adds Node honest clients;
    ``kinds`` restricts the case kinds (name -> weight); ``settle_timeout`` is how long the
    sessions get to come back to the honest ones; ``confirm_seconds`` bounds the replays
    that look for the case behind a traceback.
    """

    def __init__(self, url: str, *, seed: int, seconds: float, workers: int = 4, server_pid: int | None = None,
                 server_log: str | None = None, rss_limit_mb: float = 300.0, honest: bool = True,
                 node_clients: Any = None, corpus_file: str | None = None, verbose: bool = False,
                 kinds: dict[str, int] | None = None, settle_timeout: float = 20.0,
                 confirm_seconds: float = 15.0, regressions: bool = True, out: Any = None) -> None:
        u = urlsplit(url)
        self.url = url.rstrip("/")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.seed = seed
        self.seconds = seconds
        self.workers = workers
        self.server_pid = server_pid
        self.server_log = server_log
        self.rss_limit_mb = rss_limit_mb
        self.honest_enabled = honest
        self.node_clients = node_clients
        self.corpus_file = corpus_file
        self.verbose = verbose
        self.kinds = kinds or dict(KINDS)
        self.settle_timeout = settle_timeout
        self.confirm_seconds = confirm_seconds
        self.regressions = regressions
        self.out = out or sys.stdout
        self.findings: list[Finding] = []
        self._finding_keys: set[str] = set()
        self.lock = threading.Lock()
        self.recent: collections.deque[Case] = collections.deque(maxlen=3000)
        self.running: dict[str, Case] = {}
        self.sid_cases: dict[str, str] = {}
        self.case_counts: collections.Counter[str] = collections.Counter()
        self.counters: collections.Counter[str] = collections.Counter()
        self.corpus: list[dict[str, Any]] = []
        #: the server's maxPayload (from its OPEN packets)
        self.max_payload = 1_000_000
        self.corpus_bytes: list[bytes] = []
        self.honest: list[Honest] = []
        self.watcher: LogWatcher | None = None
        self.confirmed: dict[str, str] = {}
        self._stop = threading.Event()

    # -- bookkeeping
    def log(self, msg: str) -> None:
        print(msg, file=self.out, flush=True)

    def count(self, key: str) -> None:
        with self.lock:
            self.counters[key] += 1

    def track_sid(self, sid: str, case: Case) -> None:
        case.sids.append(sid)
        with self.lock:
            self.sid_cases[sid] = case.id

    def add_finding(self, finding: Finding) -> None:
        key = f"{finding.kind}|{finding.message[:80]}"
        with self.lock:
            if key in self._finding_keys:
                return
            self._finding_keys.add(key)
            self.findings.append(finding)
        self.log(f"{'NOTE' if finding.note else 'FINDING'} (seed {self.seed}): {finding.render()}")

    def on_traceback(self, rec: dict[str, Any]) -> None:
        rec["suspects"] = self.suspect_cases(rec["t"])
        self.add_finding(Finding(
            "traceback" if rec["socketio_sync"] else "traceback-gevent",
            f"server log: {rec['signature']}" + ("" if rec["socketio_sync"] else " (gevent pywsgi logging a bad "
                                                                                 "client; no socketio_sync code)"),
            detail=rec["text"][-4000:] + "\ncases running around then: " + ", ".join(c.id for c in rec["suspects"][:20])))

    def suspect_cases(self, t: float, before: float = 3.0) -> list[Case]:
        with self.lock:
            cases = list(self.running.values()) + list(self.recent)
        hits = [c for c in cases if c.start <= t + 0.3 and (c.end is None or c.end >= t - before)]
        hits.sort(key=lambda c: -(c.end or t))
        return hits

    def cases_in(self, text: str) -> list[Case]:
        """The cases whose session ids appear in ``text``."""
        with self.lock:
            ids = [self.sid_cases[s] for s in re.findall(r"[A-Za-z0-9_-]{22}", text) if s in self.sid_cases]
            known = {c.id: c for c in self.recent}
        return [known[i] for i in dict.fromkeys(ids) if i in known]

    def suspects_text(self, t: float) -> str:
        return "cases running around then: " + ", ".join(c.id for c in self.suspect_cases(t)[:20])

    # -- the server
    def server_alive(self) -> bool:
        if self.server_pid is None:
            return True
        try:
            with open(f"/proc/{self.server_pid}/status") as f:
                return not any(line.startswith("State:") and ("Z" in line.split()[1]) for line in f)
        except OSError:
            return False

    def rss_kb(self) -> int | None:
        if self.server_pid is not None:
            try:
                with open(f"/proc/{self.server_pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            return int(line.split()[1])
            except OSError:
                return None
        stats = self.stats()
        return stats.get("rss_kb") if stats else None

    def stats(self, full: bool = False) -> dict[str, Any] | None:
        try:
            r = request(self.url, "GET", "/stats?full=1" if full else "/stats", timeout=5)
            if r.status != 200:
                return None
            return r.json()
        except Exception:  # noqa: BLE001
            return None

    # -- running cases
    def run_case(self, case_id: str, kind: str | None = None) -> Case:
        case = Case(self, case_id, kind)
        with self.lock:
            self.running[case.id] = case
            self.case_counts[case.kind] += 1
        try:
            if case.id.startswith("regression-"):
                REGRESSIONS[case.id[len("regression-"):]](case)
            else:
                CASES[case.kind](case)
        except (OSError, socket.timeout) as exc:
            case.note(f"connection error: {exc!r}")
        except Exception:  # noqa: BLE001 - a bug in the fuzzer itself: report, keep going
            self.count("fuzzer errors")
            self.log(f"fuzzer error in case {case.id} ({case.kind}):\n{traceback.format_exc()}")
        finally:
            case.close_all()
            case.end = time.time()
            with self.lock:
                self.running.pop(case.id, None)
                self.recent.append(case)
        return case

    def _regressions(self, deadline: float) -> None:
        for name in REGRESSIONS:
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            self.run_case(f"regression-{name}")

    def _worker(self, w: int, deadline: float) -> None:
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.run_case(f"{self.seed}-{w}-{n}")
            n += 1

    # -- phases
    def load_corpus(self) -> None:
        if self.corpus_file and os.path.exists(self.corpus_file):
            with open(self.corpus_file) as f:
                items = json.load(f)
            self.corpus = [{"kind": i["kind"], "data": base64.b64decode(i["data"]), "sids": i["sids"]} for i in items]
            self.log(f"corpus: {len(self.corpus)} streams from {self.corpus_file}")
        else:
            try:
                self.corpus = capture_corpus(self)
            except Exception as exc:  # noqa: BLE001
                self.log(f"capture failed ({exc!r}): synthetic corpus")
            if not self.corpus:
                self.corpus = synthetic_corpus(self)
            self.log(f"corpus: {len(self.corpus)} captured streams "
                     f"({sum(len(i['data']) for i in self.corpus)} bytes)")
        self.corpus_bytes = [i["data"] for i in self.corpus]

    def save_corpus(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump([{"kind": i["kind"], "data": base64.b64encode(i["data"]).decode(), "sids": i["sids"]}
                       for i in self.corpus], f)

    def start_honest(self) -> None:
        clients: list[Honest] = [HonestPy(self, "py-ws", "websocket"), HonestPy(self, "py-polling", "polling"),
                                 HonestPy(self, "py-upgrade", "upgrade")]
        if self.node_clients is not None:
            clients += [HonestNode(self, self.node_clients, "node-ws", "websocket"),
                        HonestNode(self, self.node_clients, "node-polling", "polling")]
        for c in clients:
            try:
                c.connect()
            except Exception as exc:  # noqa: BLE001
                self.add_finding(Finding("honest", f"{c.name} could not connect and join: {exc!r}"))
                c.close()
                continue
            self.honest.append(c)
        clients = self.honest
        for c in clients:
            c.start()
        self.log(f"honest clients: {', '.join(c.name for c in clients)}")

    def stop_honest(self) -> None:
        for c in self.honest:
            c.stopping.set()
        for c in self.honest:
            c.stop()
        # every broadcast of every honest client reached every other one, in order
        deadline = time.monotonic() + 8
        while True:
            missing = self._missing_broadcasts()
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for receiver, sender, lost in missing:
            receiver.error(f"{len(lost)} broadcasts of {sender} never arrived (e.g. {lost[:5]})")
        for c in self.honest:
            c.final_check()
            received = c.broadcasts_received()
            for other in self.honest:
                seq = [n for s, n in received if s == other.name]
                if seq != sorted(seq) or len(seq) != len(set(seq)):
                    c.error(f"broadcasts of {other.name} out of order or duplicated: {seq[:30]}")

    def _missing_broadcasts(self) -> list[tuple[Honest, str, list[int]]]:
        out = []
        for receiver in self.honest:
            if receiver.error_count and not receiver.connected():
                continue  # disconnected: reported already
            got = set(receiver.broadcasts_received())
            for sender in self.honest:
                if sender is receiver:
                    continue
                lost = [n for n in sender.sent_broadcasts if (sender.name, n) not in got]
                if lost:
                    out.append((receiver, sender.name, lost))
        return out

    def settle(self) -> tuple[float | None, dict[str, Any] | None]:
        """Wait until /stats shows the honest clients only; returns (seconds, stats)."""
        n = sum(1 for c in self.honest if c.connected())  # one disconnected is reported already
        start = time.monotonic()
        stats = None
        while time.monotonic() - start < self.settle_timeout:
            stats = self.stats()
            if stats is None:
                return None, None
            if self._settled(stats, n):
                return time.monotonic() - start, stats
            time.sleep(0.25)
        return None, stats

    @staticmethod
    def _settled(stats: dict[str, Any], n: int) -> bool:
        sockets = stats.get("sockets", {})
        rooms = stats.get("rooms", {})
        return (stats.get("sessions") == n and sockets.get("/", 0) == n
                and all(v == 0 for k, v in sockets.items() if k != "/")
                and rooms.get("/", 0) == (n + 1 if n else 0)
                and all(v == 0 for k, v in rooms.items() if k != "/")
                and stats.get("pending_acks", 0) == 0)

    def confirm(self) -> None:
        """Replay the cases that ran around each unexplained traceback, one at a time,
        to find one that reproduces it alone."""
        if self.watcher is None:
            return
        deadline = time.monotonic() + self.confirm_seconds
        tried: set[str] = set()
        for rec in list(self.watcher.tracebacks):
            sig = rec["signature"]
            if sig in self.confirmed or not rec["socketio_sync"]:
                continue
            by_sid = self.cases_in(rec.get("context", ""))
            for case in by_sid:
                self.add_finding(Finding("traceback-source", f"{sig}: logged for a session of case {case.id}",
                                         case.id, case.describe()))
            if any(c.id.startswith("regression-") for c in by_sid):
                self.confirmed[sig] = by_sid[0].id  # a known input: no replay needed
                continue
            for suspect in (by_sid + rec.get("suspects", []))[:25]:
                if time.monotonic() > deadline:
                    return
                if suspect.id in tried:
                    continue
                tried.add(suspect.id)
                self.watcher.scan()
                before = len(self.watcher.tracebacks)
                case = self.run_case(suspect.id, suspect.kind)
                time.sleep(0.3)
                self.watcher.scan()
                self.watcher.flush()
                new = self.watcher.tracebacks[before:]
                for r in new:
                    if r["signature"] not in self.confirmed:
                        self.confirmed[r["signature"]] = case.id
                        self.add_finding(Finding("reproduced" if r["socketio_sync"] else "reproduced-gevent",
                                                 f"case {case.id} alone reproduces: {r['signature']}",
                                                 case.id, case.describe()))
                if sig in self.confirmed:
                    break

    def run(self) -> Report:
        self.log(f"live fuzz: seed={self.seed} seconds={self.seconds:g} workers={self.workers} url={self.url}")
        if self.server_log:
            self.watcher = LogWatcher(self, self.server_log)
            self.watcher.scan()  # what is there already is not ours to judge...
            self.watcher.tracebacks.clear()
            self.watcher.start()
        self.load_corpus()
        if self.honest_enabled:
            self.start_honest()
        greenlets_before = (self.stats(full=True) or {}).get("greenlets")
        monitor = Monitor(self)
        monitor.start()
        deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self._worker, args=(w, deadline), daemon=True, name=f"fuzz-{w}")
                   for w in range(self.workers)]
        if self.regressions:
            threads.append(threading.Thread(target=self._regressions, args=(deadline,), daemon=True,
                                            name="fuzz-regressions"))
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.seconds + 30)
            if t.is_alive():
                self.add_finding(Finding("fuzzer", f"{t.name} did not finish (a case hangs)"))
        self._stop.set()
        monitor.stop()
        if self.honest:
            self.stop_honest()
        settle_seconds, final_stats = (None, None)
        if self.honest_enabled:
            settle_seconds, final_stats = self.settle()
            if settle_seconds is None:
                self._report_leak(final_stats)
        if not self.server_alive():
            self.add_finding(Finding("crash", "the server process is gone at the end"))
        else:
            try:
                fresh_handshake(self, timeout=5)
                ws, _ = sio_connect(self.url, timeout=5)
                ws.send('4212["echo","final"]')
                reply = ws.recv_skip_pings(5)
                ws.close()
                if reply != '4312["final"]':
                    self.add_finding(Finding("final", f"a fresh client's echo got {reply!r}"))
            except Exception as exc:  # noqa: BLE001
                self.add_finding(Finding("final", f"a fresh client could not connect and echo: {exc!r}"))
        greenlets_after = (self.stats(full=True) or {}).get("greenlets")
        final_rss = self.rss_kb()
        if final_rss is not None and final_rss > self.rss_limit_mb * 1024:
            self.add_finding(Finding("memory", f"server RSS {final_rss / 1024:.1f} MB > {self.rss_limit_mb} MB"))
        if self.watcher is not None:
            time.sleep(0.3)
            self.watcher.scan()
            self.watcher.flush()
            self.confirm()
            self.watcher.stop()
            for key, n in sorted(self.watcher.levels.items()):
                # socketio_sync logs client misbehaviour at INFO: an ERROR of its own is a bug
                level, logger = key.split(" ", 1)
                kind = "log-error" if level != "WARNING" and logger.startswith("socketio_sync") else "log"
                self.add_finding(Finding(kind, f"{n} server log lines {key}", detail=self.watcher.samples[key]))
        if final_stats and final_stats.get("handler_errors"):
            self.add_finding(Finding("handler-error", f"{final_stats['handler_errors']} exceptions caught in the "
                                                      f"app's handlers: {final_stats.get('last_handler_errors')}"))
        for c in self.honest:
            for e in c.errors:
                self.add_finding(Finding("honest", e))
            if c.error_count > len(c.errors):
                self.add_finding(Finding("honest", f"{c.name}: {c.error_count - len(c.errors)} more errors"))
            c.close()
        report = Report(
            seed=self.seed, seconds=self.seconds, findings=list(self.findings), cases=self.case_counts,
            counters=self.counters, max_rss_kb=max(monitor.max_rss_kb, final_rss or 0), final_rss_kb=final_rss,
            settle_seconds=settle_seconds, final_stats=final_stats,
            honest_ops={c.name: c.ops for c in self.honest},
            log_levels=dict(self.watcher.levels) if self.watcher else {},
            log_samples=dict(self.watcher.samples) if self.watcher else {}, url=self.url,
            greenlets=(greenlets_before, greenlets_after),
        )
        if self.findings:
            path = self.corpus_file or os.path.join(tempfile.gettempdir(), f"fuzz-corpus-{self.seed}.json")
            try:
                self.save_corpus(path)
                report.corpus_file = path
            except OSError:
                pass
        return report

    def _report_leak(self, stats: dict[str, Any] | None) -> None:
        if stats is None:
            self.add_finding(Finding("leak", "/stats did not answer"))
            return
        honest_sids = {c.engine_sid() for c in self.honest if c.connected()}
        leaked = [s for s in stats.get("session_ids", []) if s not in honest_sids]
        detail = []
        with self.lock:
            recent = list(self.recent)
        for sid in leaked[:10]:
            case_id = self.sid_cases.get(sid)
            case = next((c for c in recent if c.id == case_id), None)
            detail.append(f"session {sid}: opened by case {case_id}" + (f"\n{case.describe(3000)}" if case else ""))
        self.add_finding(Finding(
            "leak", f"after {self.settle_timeout:g} s /stats does not show just the {len(honest_sids)} connected "
                    f"honest clients: {json.dumps({k: v for k, v in stats.items() if k != 'session_ids'})}",
            detail="\n".join(detail)))


# =========================================================================== command line

def spawn_server(log_path: str, **opts: Any) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tests.apps.serve", "tests.apps.fuzz_app:build", "--port", "0",
           "--opt", f"stderr_path={json.dumps(log_path)}"]
    for k, v in opts.items():
        cmd += ["--opt", f"{k}={json.dumps(v)}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT),
                                 "TEST_LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "INFO")})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.live", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="the server (default: --spawn)")
    p.add_argument("--spawn", action="store_true", help="start tests.apps.fuzz_app in a subprocess")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--server-log", help="the server's stderr, watched for tracebacks")
    p.add_argument("--server-pid", type=int, help="watched for death and VmRSS")
    p.add_argument("--rss-limit-mb", type=float, default=300.0)
    p.add_argument("--node", action="store_true", help="add Node socket.io-client honest clients")
    p.add_argument("--no-honest", action="store_true", help="no honest clients (and no session checks)")
    p.add_argument("--no-regressions", action="store_true",
                   help="skip the inputs that found bugs before (REGRESSIONS), replayed at the start otherwise")
    p.add_argument("--kinds", help="comma-separated case kinds to run (default: all): " + ",".join(KINDS))
    p.add_argument("--corpus", help="load the captured corpus from this file (written on findings)")
    p.add_argument("--replay", help="run one case (its id, SEED-WORKER-N) verbosely and stop")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10 ** 9)
    if args.replay and args.replay[:1].isdigit():
        seed = int(args.replay.split("-")[0])
    proc = None
    server_log, server_pid, url = args.server_log, args.server_pid, args.url
    if args.spawn or not url:
        server_log = server_log or os.path.join(tempfile.gettempdir(), f"fuzz-server-{os.getpid()}.log")
        proc, url = spawn_server(server_log)
        server_pid = proc.pid
        print(f"server: {url} (pid {proc.pid}), log: {server_log}", flush=True)
    kinds = None
    if args.kinds:
        kinds = {k: KINDS[k] for k in args.kinds.split(",")}
    node = None
    try:
        if args.node and not args.replay:
            from tests.jsclient import NodeClients, require_node_clients

            node = NodeClients(require_node_clients()).start()
        fz = Fuzzer(url, seed=seed, seconds=args.seconds, workers=args.workers, server_pid=server_pid,
                    server_log=server_log, rss_limit_mb=args.rss_limit_mb, honest=not args.no_honest,
                    node_clients=node, corpus_file=args.corpus, verbose=args.verbose or bool(args.replay),
                    kinds=kinds, regressions=not args.no_regressions)
        if args.replay:
            fz.load_corpus()
            if server_log:
                fz.watcher = LogWatcher(fz, server_log)
                fz.watcher.scan()
                fz.watcher.tracebacks.clear()
            case = fz.run_case(args.replay)
            time.sleep(0.5)
            if fz.watcher:
                fz.watcher.scan()
                fz.watcher.flush()
            print(case.describe(100_000))
            for f in fz.findings:
                print(f.render())
            return 1 if fz.findings else 0
        report = fz.run()
        print(report.render(), flush=True)
        return 0 if report.ok else 1
    finally:
        if node is not None:
            node.stop()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
