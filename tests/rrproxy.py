"""A round-robin HTTP proxy for the session-forwarding tests (issue #7): every HTTP
request goes to the next upstream over a new connection, so a client's requests are
spread over every server (and, behind one gunicorn, over its workers, as the kernel
hands out connections). A WebSocket handshake is piped both ways once connected.

    python -m tests.rrproxy PORT UPSTREAM_PORT [UPSTREAM_PORT ...]

Prints ``listening`` when ready; on SIGTERM prints ``{"requests": N, "websockets": M}``.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import itertools  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

COUNTS = {"requests": 0, "websockets": 0, "errors": 0}


def _read_head(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
        if len(buf) > 65536:
            return None
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_handler(upstreams: list[tuple[str, int]]):  # type: ignore[no-untyped-def]
    rr = itertools.cycle(upstreams)

    def handle(client: socket.socket, _addr: object) -> None:
        buf = b""
        try:
            while True:
                got = _read_head(client, buf)
                if got is None:
                    return
                head, buf = got
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                while len(buf) < length:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                upstream = socket.create_connection(next(rr))
                if "websocket" in headers.get("upgrade", "").lower():
                    COUNTS["websockets"] += 1
                    upstream.sendall(head + body + buf)
                    gevent.spawn(_pipe, upstream, client)
                    _pipe(client, upstream)
                    return
                COUNTS["requests"] += 1
                # One request per upstream connection: the next one may go elsewhere.
                kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("connection:")]
                upstream.sendall(("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
                                 + body)
                response = b""
                while True:
                    chunk = upstream.recv(65536)
                    if not chunk:
                        break
                    response += chunk
                upstream.close()
                if not response:
                    COUNTS["errors"] += 1
                    return
                rhead, _, rbody = response.partition(b"\r\n\r\n")
                rlines = [ln for ln in rhead.decode("latin-1").split("\r\n")
                          if not ln.lower().startswith("connection:")]
                client.sendall(("\r\n".join(rlines) + "\r\n\r\n").encode("latin-1") + rbody)
        except OSError:
            COUNTS["errors"] += 1
        finally:
            client.close()

    return handle


def main(argv: list[str]) -> None:
    port = int(argv[0])
    upstreams = [("127.0.0.1", int(p)) for p in argv[1:]]
    server = StreamServer(("127.0.0.1", port), make_handler(upstreams), backlog=1024)
    server.start()

    def stop() -> None:
        print(json.dumps(COUNTS), flush=True)
        server.stop(timeout=0)
        sys.exit(0)

    gevent.signal_handler(signal.SIGTERM, stop)
    print("listening", flush=True)
    gevent.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
