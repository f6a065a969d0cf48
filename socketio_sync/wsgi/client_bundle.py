"""Serving the official client bundle (Node's ``serveClient``): ``/socket.io/socket.io.js``,
``.min.js``, ``.esm.min.js``, ``.msgpack.min.js`` and their ``.map`` files, read from the
npm ``socket.io-client`` package's ``dist/`` directory when it is on disk.

Nothing is vendored: without the package, these paths answer ``404`` with a message that
says how to install it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from .http_options import choose_encoding, compress_body

__all__ = ["ClientBundle", "CLIENT_FILE", "find_client_dist"]

log = logging.getLogger("socketio_sync.server")

#: The file names served (the regular expression Node's server uses).
CLIENT_FILE = re.compile(r"socket\.io(\.msgpack|\.esm)?(\.min)?\.js(\.map)?")

_NOT_FOUND = (
    "socket.io-client bundle not found: install the npm package next to your application "
    "(`npm install socket.io-client`), or pass client_path= (its directory or its dist/ directory) "
    "to socketio_sync.Server; searched: {where}"
)


def find_client_dist(client_path: str | os.PathLike[str] | None = None,
                     start: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``dist/`` directory of ``socket.io-client``: under ``client_path`` (the package
    directory, its ``dist/``, or a ``node_modules`` directory) if given, else in
    ``node_modules`` of ``start`` (the working directory) or of one of its parents."""
    if client_path is not None:
        base = Path(client_path)
        for cand in (base, base / "dist", base / "socket.io-client" / "dist"):
            if (cand / "socket.io.js").is_file():
                return cand
        return None
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        cand = folder / "node_modules" / "socket.io-client" / "dist"
        if (cand / "socket.io.js").is_file():
            return cand
    return None


class ClientBundle:
    """Answers requests for the client files (a WSGI responder).

    :param client_path: where the npm package is (see :func:`find_client_dist`);
        ``None``: look in ``node_modules`` from the working directory upwards.

    Files are read on first request and kept in memory with their gzip and deflate
    encodings. The ``ETag`` is the package version, as on Node (``"4.8.1"``), so a
    cached copy is revalidated (``Cache-Control: public, max-age=0``) with a ``304``.
    """

    def __init__(self, client_path: str | os.PathLike[str] | None = None) -> None:
        self.client_path = client_path
        self._dist: Path | None = None
        self._etag: str | None = None
        self._files: dict[str, dict[str | None, bytes]] = {}

    def _locate(self) -> Path | None:
        if self._dist is None:
            dist = find_client_dist(self.client_path)
            if dist is not None:
                self._dist = dist
                self._etag = '"' + _version(dist) + '"'
                log.info("serving the client bundle from %s (etag %s)", dist, self._etag)
        return self._dist

    def _where(self) -> str:
        if self.client_path is not None:
            return str(self.client_path)
        return f"node_modules/socket.io-client/dist from {os.getcwd()} upwards"

    def _content(self, dist: Path, name: str, encoding: str | None) -> bytes | None:
        variants = self._files.get(name)
        if variants is None:
            try:
                raw = (dist / name).read_bytes()
            except OSError:
                return None
            variants = self._files[name] = {None: raw}
        data = variants.get(encoding)
        if data is None and encoding is not None:
            data = variants[encoding] = compress_body(variants[None], encoding, 9)
        return data

    def __call__(self, name: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "GET or HEAD only", [("Allow", "GET, HEAD")])
        dist = self._locate()
        if dist is None:
            msg = _NOT_FOUND.format(where=self._where())
            log.warning("%s", msg)
            return _plain(start_response, "404 Not Found", msg)
        if not CLIENT_FILE.fullmatch(name) or not (dist / name).is_file():
            return _plain(start_response, "404 Not Found", f"{name}: no such file in {dist}")
        etag = self._etag or ""
        if etag and _etag_matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
            start_response("304 Not Modified", [("ETag", etag), ("Cache-Control", "public, max-age=0")])
            return []
        encoding = choose_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
        data = self._content(dist, name, encoding)
        if data is None:
            return _plain(start_response, "404 Not Found", f"{name}: cannot be read from {dist}")
        kind = "json" if name.endswith(".map") else "javascript"
        headers = [
            ("Content-Type", f"application/{kind}; charset=utf-8"),
            ("Cache-Control", "public, max-age=0"),
            ("ETag", etag),
            ("Vary", "Accept-Encoding"),
            ("Content-Length", str(len(data))),
        ]
        if encoding is not None:
            headers.append(("Content-Encoding", encoding))
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [data]


def _version(dist: Path) -> str:
    try:
        version = json.loads((dist.parent / "package.json").read_text("utf-8"))["version"]
        if isinstance(version, str) and re.fullmatch(r"[0-9A-Za-z.+\-]+", version):
            return version
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return hashlib.sha256((dist / "socket.io.js").read_bytes()).hexdigest()[:16]


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if item == etag:
            return True
    return False


def _plain(start_response: Callable[..., Any], status: str, text: str,
           extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = text.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))] + (extra or []))
    return [body]
