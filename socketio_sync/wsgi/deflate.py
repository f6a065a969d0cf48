"""permessage-deflate (RFC 7692) for :class:`socketio_sync.wsgi.websocket.ServerWebSocket`.

Three parts, the first two pure:

* :func:`deflate_options` validates the ``per_message_deflate`` server option;
* :func:`negotiate` reads the client's ``Sec-WebSocket-Extensions`` offers and returns the
  parameters of the one accepted (:class:`DeflateParams`, with the response header
  value), or ``None``;
* :class:`PerMessageDeflate` is the codec of one connection (``zlib``): it inflates
  incoming messages with a size limit (a plugin of the ``websockets`` reader, which
  does the framing checks) and deflates outgoing ones.

Only our own WebSocket implementation negotiates it: gevent-websocket's stock handler
(its gunicorn worker) answers ``101`` before the application runs and has no extensions.
"""
from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import PayloadTooBig, ProtocolError
from websockets.extensions.base import Extension
from websockets.frames import Frame, Opcode

from .http_options import dataclass_option

__all__ = ["DeflateOptions", "DeflateParams", "PerMessageDeflate", "deflate_options", "negotiate",
           "parse_extensions"]

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"
_PARAMS = ("server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
           "client_max_window_bits")


@dataclass(frozen=True)
class DeflateOptions:
    """The server's permessage-deflate settings (Node's ``perMessageDeflate`` object).

    :param threshold: messages smaller than this many bytes are sent uncompressed
        (Node: 1024).
    :param level: zlib compression level, 0-9.
    :param mem_level: zlib memory level, 1-9.
    :param server_no_context_takeover: compress every message on its own (costs ratio,
        saves the per-connection compression window; lets a broadcast share frames).
    :param client_no_context_takeover: ask clients to do the same.
    :param server_max_window_bits: the server's LZ77 window, 9-15 (zlib cannot write
        with 8).
    :param client_max_window_bits: the largest window clients may use, 8-15; only sent
        when the client offered the parameter (RFC 7692 section 7.1.2.2).
    """

    threshold: int = 1024
    level: int = zlib.Z_DEFAULT_COMPRESSION
    mem_level: int = 8
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None


def deflate_options(value: Any) -> DeflateOptions | None:
    """``per_message_deflate``: ``False``/``None`` (off, as on Node), ``True`` (defaults) or
    a dict of :class:`DeflateOptions` fields."""
    opts = dataclass_option(value, DeflateOptions, "per_message_deflate")
    if opts is None:
        return None
    if opts.threshold < 0:
        raise ValueError("per_message_deflate threshold must be >= 0")
    if not (-1 <= opts.level <= 9) or not (1 <= opts.mem_level <= 9):
        raise ValueError("per_message_deflate level is -1..9 and mem_level 1..9")
    if opts.server_max_window_bits is not None and not 9 <= opts.server_max_window_bits <= 15:
        raise ValueError("server_max_window_bits must be 9..15 (zlib cannot compress with 8)")
    if opts.client_max_window_bits is not None and not 8 <= opts.client_max_window_bits <= 15:
        raise ValueError("client_max_window_bits must be 8..15")
    return opts


@dataclass(frozen=True)
class DeflateParams:
    """What was agreed for one connection."""

    #: The ``Sec-WebSocket-Extensions`` value of the ``101``.
    header: str
    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_window_bits: int
    threshold: int
    level: int
    mem_level: int


def parse_extensions(header: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` as ``[(name, [(param, value or None), ...]), ...]``
    (RFC 6455 section 9.1; quoted values unquoted). Raises ``ValueError`` on bad syntax."""
    out: list[tuple[str, list[tuple[str, str | None]]]] = []
    for item in _split_outside_quotes(header, ","):
        item = item.strip()
        if not item:
            continue
        parts = _split_outside_quotes(item, ";")
        name = parts[0].strip().lower()
        if not _is_token(name):
            raise ValueError(f"bad extension name {name!r}")
        params: list[tuple[str, str | None]] = []
        for part in parts[1:]:
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            if not _is_token(key):
                raise ValueError(f"bad extension parameter {key!r}")
            if not eq:
                params.append((key, None))
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace("\\", "")
            if not _is_token(value):
                raise ValueError(f"bad value for {key}: {value!r}")
            params.append((key, value))
        out.append((name, params))
    return out


def negotiate(header: str | None, options: DeflateOptions | None) -> DeflateParams | None:
    """Accept the first acceptable permessage-deflate offer in ``header`` (the client's
    ``Sec-WebSocket-Extensions``), or ``None`` (no offer, or none acceptable: the
    connection then goes without compression)."""
    if options is None or not header:
        return None
    try:
        offers = parse_extensions(header)
    except ValueError:
        return None
    for name, params in offers:
        if name != NAME:
            continue
        agreed = _accept_offer(params, options)
        if agreed is not None:
            return agreed
    return None


def _accept_offer(params: list[tuple[str, str | None]], opts: DeflateOptions) -> DeflateParams | None:
    seen: dict[str, str | None] = {}
    for key, value in params:
        if key not in _PARAMS or key in seen:
            return None  # unknown or repeated: decline this offer (RFC 7692 section 5)
        if key.endswith("context_takeover") and value is not None:
            return None
        if key == "server_max_window_bits" and value is None:
            return None
        if value is not None and not (value.isdigit() and value == str(int(value)) and 8 <= int(value) <= 15):
            return None
        seen[key] = value
    response = [NAME]
    server_nct = "server_no_context_takeover" in seen or opts.server_no_context_takeover
    if server_nct:
        response.append("server_no_context_takeover")
    client_nct = "client_no_context_takeover" in seen or opts.client_no_context_takeover
    if client_nct:
        response.append("client_no_context_takeover")
    window = 15
    if "server_max_window_bits" in seen:
        window = min(int(seen["server_max_window_bits"] or 15), opts.server_max_window_bits or 15)
        if window < 9:
            return None  # zlib cannot compress with a 256-byte window: decline
        response.append(f"server_max_window_bits={window}")
    elif opts.server_max_window_bits is not None:
        window = opts.server_max_window_bits  # allowed unasked (RFC 7692 section 7.1.2.1)
        response.append(f"server_max_window_bits={window}")
    if "client_max_window_bits" in seen:
        offered = seen["client_max_window_bits"]
        limit = opts.client_max_window_bits
        if offered is not None and limit is not None:
            response.append(f"client_max_window_bits={min(int(offered), limit)}")
        elif limit is not None:
            response.append(f"client_max_window_bits={limit}")
        # else: not limited by us. Never sent unoffered (section 7.1.2.2). Inflating with a
        # 15-bit window reads any smaller window, so nothing else depends on it.
    return DeflateParams(
        header="; ".join(response), server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct, server_window_bits=window,
        threshold=opts.threshold, level=opts.level, mem_level=opts.mem_level,
    )


class PerMessageDeflate(Extension):
    """The codec of one connection.

    As a ``websockets`` extension it inflates frames with RSV1 (and the continuation
    frames of such a message) while that library parses the stream; :meth:`compress`
    deflates an outgoing payload.

    :param params: what :func:`negotiate` agreed.
    """

    name = NAME  # type: ignore[assignment]

    def __init__(self, params: DeflateParams) -> None:
        self.params = params
        self._inflater: Any = None
        self._deflater: Any = None
        self._in_message = False  # inside a compressed, fragmented message

    # -- incoming ---------------------------------------------------------------------------

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        opcode = frame.opcode
        if opcode is Opcode.CONT:
            if not self._in_message:
                return frame  # continuation of an uncompressed message (RSV1 set: check() refuses)
            if frame.rsv1:
                raise ProtocolError("RSV1 set on a continuation frame")
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.rsv1:
                return frame
            self._in_message = True
        else:
            return frame  # control frames are never compressed (check() refuses RSV1)
        if self._inflater is None:
            self._inflater = zlib.decompressobj(-15)
        data = bytes(frame.data)
        if frame.fin:
            data += _TAIL
        try:
            out = self._inflater.decompress(data, 0 if max_size is None else max_size + 1)
        except zlib.error as exc:
            raise ProtocolError(f"permessage-deflate: bad compressed data ({exc})") from None
        if max_size is not None and (len(out) > max_size or self._inflater.unconsumed_tail):
            self._inflater = None  # never used again: the connection closes with 1009
            raise PayloadTooBig(len(out), max_size)
        if frame.fin:
            self._in_message = False
            if self.params.client_no_context_takeover:
                self._inflater = None
        return dataclasses.replace(frame, data=out, rsv1=False)

    def encode(self, frame: Frame) -> Frame:
        # The websockets protocol only writes control frames for us (pongs, close), which
        # are never compressed; data frames are built by compress() and websocket.frame().
        return frame

    # -- outgoing ---------------------------------------------------------------------------

    def wants(self, size: int) -> bool:
        """Whether a payload of ``size`` bytes is worth compressing (the threshold)."""
        return size >= self.params.threshold

    def compress(self, payload: bytes) -> bytes:
        """The compressed payload of one whole message (to send with RSV1 set)."""
        params = self.params
        deflater = self._deflater
        if deflater is None:
            deflater = zlib.compressobj(params.level, zlib.DEFLATED, -params.server_window_bits,
                                        params.mem_level)
            if not params.server_no_context_takeover:
                self._deflater = deflater
        data = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(_TAIL):
            data = data[:-4]
        return data

    @property
    def shareable(self) -> tuple[int, int, int] | None:
        """A key under which compressed frames can be shared between connections (same
        output for the same input: no context takeover), else ``None``."""
        params = self.params
        if not params.server_no_context_takeover:
            return None
        return (params.level, params.server_window_bits, params.mem_level)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ValueError("unterminated quoted string")
    parts.append("".join(current))
    return parts


_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(ch in _TOKEN_CHARS for ch in text)
