"""The Node server's Engine.IO-level HTTP options, as pure functions: the ``cookie``
option, ``allowRequest``, the ``initial_headers``/``headers`` hooks and
``httpCompression`` (see :class:`socketio_sync.wsgi.engine.EngineServer`).
"""
from __future__ import annotations

import dataclasses
import gzip
import logging
import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

__all__ = [
    "CookieOptions", "HttpCompression", "cookie_options", "dataclass_option", "serialize_cookie", "http_compression_options",
    "choose_encoding", "compress_body", "run_allow_request", "run_header_hook", "clean_headers",
]

log = logging.getLogger("socketio_sync.eio")
_T = TypeVar("_T")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 6265 cookie-octets: no controls, whitespace, DQUOTE, comma, semicolon or backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_ATTRIBUTE = re.compile(r"[\x20-\x3a\x3c-\x7e]+")  # no controls, no ';'


@dataclass(frozen=True)
class CookieOptions:
    """The ``cookie`` option; defaults as engine.io's (``{name: "io", path: "/",
    httpOnly: true, sameSite: "lax"}``). ``max_age`` is in seconds."""

    name: str = "io"
    path: str | None = "/"
    http_only: bool = True
    same_site: str | bool | None = "lax"
    secure: bool = False
    max_age: float | None = None
    domain: str | None = None


def dataclass_option(value: Any, cls: type[_T], option: str,
                     prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> _T | None:
    """The common shape of an option whose value is a dataclass: ``None``/``False`` (off),
    ``True`` (the defaults), an instance, or a dict of its fields (``prepare`` may adjust
    them); anything else, or an unknown field, is a TypeError naming ``option``."""
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(value) - known
        if unknown:
            raise TypeError(f"unknown {option} option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**(prepare(dict(value)) if prepare is not None else value))
    raise TypeError(f"{option} must be True, False or a dict of options")


def _cookie_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("path", "/") is False:
        fields["path"] = None
        fields.setdefault("http_only", False)
    return fields


def cookie_options(value: Any) -> CookieOptions | None:
    """``cookie``: ``None``/``False`` (no cookie, the default), ``True`` or a dict of
    :class:`CookieOptions` fields. As on Node, ``path=False`` means no ``Path`` and then
    ``http_only`` defaults to false."""
    opts = dataclass_option(value, CookieOptions, "cookie", _cookie_fields)
    if opts is None:
        return None
    if not isinstance(opts.name, str) or not _TOKEN.fullmatch(opts.name):
        raise ValueError(f"cookie name must be an HTTP token, got {opts.name!r}")
    for attr in ("path", "domain"):
        val = getattr(opts, attr)
        if val is not None and not (isinstance(val, str) and _ATTRIBUTE.fullmatch(val)):
            raise ValueError(f"invalid cookie {attr} {val!r}")
    same_site = opts.same_site
    if same_site not in (None, False, True) and (
            not isinstance(same_site, str) or same_site.lower() not in ("lax", "strict", "none")):
        raise ValueError("cookie same_site must be 'lax', 'strict', 'none', True (strict) or False/None")
    if opts.max_age is not None and (not isinstance(opts.max_age, (int, float)) or opts.max_age != opts.max_age):
        raise ValueError("cookie max_age must be a number of seconds")
    return opts


def serialize_cookie(value: str, opts: CookieOptions) -> str:
    """The ``Set-Cookie`` value for ``value`` (the session id), in the attribute order of
    npm's ``cookie.serialize``."""
    if not _COOKIE_VALUE.fullmatch(value):
        raise ValueError(f"invalid cookie value {value!r}")
    parts = [f"{opts.name}={value}"]
    if opts.max_age is not None:
        parts.append(f"Max-Age={int(opts.max_age // 1)}")
    if opts.domain:
        parts.append(f"Domain={opts.domain}")
    if opts.path:
        parts.append(f"Path={opts.path}")
    if opts.http_only:
        parts.append("HttpOnly")
    if opts.secure:
        parts.append("Secure")
    same_site = opts.same_site
    if same_site is True:
        parts.append("SameSite=Strict")
    elif isinstance(same_site, str):
        parts.append("SameSite=" + same_site.capitalize())
    return "; ".join(parts)


@dataclass(frozen=True)
class HttpCompression:
    """``http_compression``: polling responses of at least ``threshold`` bytes are sent
    gzip- or deflate-encoded when the request accepts it (Node: ``{threshold: 1024}``)."""

    threshold: int = 1024
    level: int = 6


def http_compression_options(value: Any) -> HttpCompression | None:
    """``True`` (the default, as on Node), ``False``/``None``, or ``{"threshold": n, "level": l}``."""
    opts = dataclass_option(value, HttpCompression, "http_compression")
    if opts is None:
        return None
    if opts.threshold < 0 or not 0 <= opts.level <= 9:
        raise ValueError("http_compression threshold must be >= 0 and level 0..9")
    return opts


def choose_encoding(accept_encoding: str | None, supported: tuple[str, ...] = ("gzip", "deflate")) -> str | None:
    """The content coding to use for ``Accept-Encoding`` (RFC 9110 section 12.5.3), among
    ``supported`` in that order of preference; ``None``: send the body as it is. No
    header means identity only (as the npm ``accepts`` package reads it)."""
    if not accept_encoding:
        return None
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, val = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(val.strip())
                except ValueError:
                    q = 0.0
        qualities[coding] = q
    best: tuple[float, str] | None = None
    for coding in supported:
        q = qualities[coding] if coding in qualities else qualities.get("*", 0.0)
        if q > 0 and (best is None or q > best[0]):
            best = (q, coding)
    return best[1] if best else None


def compress_body(data: bytes, encoding: str, level: int = 6) -> bytes:
    """``data`` in the ``gzip`` or ``deflate`` (zlib format, RFC 9110 8.4.1.2) coding."""
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=level, mtime=0)
    if encoding == "deflate":
        return zlib.compress(data, level)
    raise ValueError(f"unsupported content coding {encoding!r}")


def run_allow_request(hook: Callable[[dict[str, Any]], Any], environ: dict[str, Any]) -> str | None:
    """Call ``allow_request(environ)``: ``None`` when the handshake may go on, else the
    refusal message (``"Forbidden"``, or the string the hook returned). A hook that raises
    refuses (logged with its traceback)."""
    try:
        verdict = hook(environ)
    except Exception:
        log.exception("allow_request raised; refusing the handshake")
        return "Forbidden"
    if verdict is True:
        return None
    if isinstance(verdict, str) and verdict:
        return verdict
    if verdict is False or verdict is None or isinstance(verdict, str):
        return "Forbidden"
    log.error("allow_request returned %r (expected True, False or a refusal message); refusing",
              type(verdict).__name__)
    return "Forbidden"


def run_header_hook(name: str, hook: Callable[..., Any], headers: list[tuple[str, str]],
                    environ: dict[str, Any]) -> None:
    """Call ``hook(headers, environ)``, which may append ``(name, value)`` pairs; errors are
    logged and the response goes out with the headers as they were before the call."""
    before = list(headers)
    try:
        hook(headers, environ)
    except Exception:
        log.exception("the %s hook raised; its headers are left out", name)
        headers[:] = before
        return
    headers[:] = clean_headers(headers, name)


def clean_headers(headers: list[Any], source: str) -> list[tuple[str, str]]:
    """Only well-formed ``(token, value)`` pairs with no line breaks (a CR/LF in a value
    would split the response); others are dropped and logged."""
    out: list[tuple[str, str]] = []
    for item in headers:
        try:
            key, value = item
        except (TypeError, ValueError):
            log.error("%s: header %r is not a (name, value) pair; dropped", source, item)
            continue
        if not isinstance(value, str):
            value = str(value)
        if (not isinstance(key, str) or not _TOKEN.fullmatch(key)
                or any(ch in value for ch in "\r\n\x00")):
            log.error("%s: invalid header %r; dropped", source, (key, value[:100]))
            continue
        out.append((key, value))
    return out
