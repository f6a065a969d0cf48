"""The Redis adapter: many server processes (and machines) act as one server.

Wire format: the one of the Node server's ``@socket.io/redis-adapter`` 8.x (classic
pub/sub) and ``@socket.io/redis-emitter``, so Python and Node servers can share a cluster:

* broadcasts: MessagePack ``[uid, packet, opts]`` on ``<key>#<nsp>#`` (or
  ``<key>#<nsp>#<room>#`` when the broadcast names exactly one room), where ``packet`` is
  ``{"type": 2, "data": [event, *args], "nsp": nsp}`` and ``opts`` is
  ``{"rooms": [...], "except": [...], "flags": {...}}``;
* requests (fetch sockets, remote join/leave/disconnect, server-side emit, broadcast
  with acks) on ``<key>-request#<nsp>#``, responses on ``<key>-response#<nsp>#``: JSON
  objects ``{"uid", "requestId", "type", ...}`` (MessagePack for broadcasts with acks).

Nothing that executes code on decode (pickle) is ever used; a message that does not
decode or does not have the expected shape is dropped and logged.

Usage::

    from gevent import monkey; monkey.patch_all()
    io = socketio_sync.Server(adapter=socketio_sync.RedisAdapter("redis://127.0.0.1:6379/0"))
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import gevent
from gevent.event import AsyncResult
from gevent.lock import RLock

from .. import recovery, sio
from ..exceptions import PublishError, RequestTimeout
from .base import Adapter, BroadcastOptions

if TYPE_CHECKING:
    from ..namespace import Namespace

__all__ = ["RedisAdapter", "RedisNamespaceAdapter", "RequestType", "Emitter"]

log = logging.getLogger("socketio_sync.adapter")


class RequestType:
    """Request types of the Node adapter (``RequestType`` enum of @socket.io/redis-adapter)."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


def _import_redis() -> Any:
    try:
        import redis
    except ImportError:
        raise ImportError(
            "the Redis adapter needs redis-py and msgpack: pip install 'socketio_sync[redis]'") from None
    return redis


def _import_msgpack() -> Any:
    try:
        import msgpack
    except ImportError:
        raise ImportError(
            "the Redis adapter needs redis-py and msgpack: pip install 'socketio_sync[redis]'") from None
    return msgpack


def _packb(obj: Any) -> bytes:
    # surrogatepass: a lone surrogate (legal in a JSON string from a client) crosses the
    # bus unchanged; each server makes it safe where it writes text to its own clients.
    return _import_msgpack().packb(  # type: ignore[no-any-return]
        obj, use_bin_type=True, unicode_errors="surrogatepass")


def _unpackb(data: bytes) -> Any:
    msgpack = _import_msgpack()
    # strict_map_key=False: a JS object may come with non-string keys. unpackb caps every
    # length by the size of ``data``, so a forged header cannot allocate more than that.
    return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3,
                           unicode_errors="surrogatepass")


def _js_values(value: Any) -> Any:
    """Turn what a Node publisher can put in MessagePack but JSON cannot carry into what
    Node's own clients would get: a ``Date`` (MessagePack timestamp) becomes its
    ``toJSON()`` string, ``2024-01-02T03:04:05.678Z``."""
    if isinstance(value, list):
        return [_js_values(v) for v in value]
    if isinstance(value, dict):
        return {k: _js_values(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=_json_fallback)


def _json_fallback(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray)):
        raise TypeError("bytes cannot travel in a JSON cluster request (server_side_emit, fetch_sockets data)")
    return repr(obj)


def _raw_opts(opts: BroadcastOptions) -> dict[str, Any]:
    flags = {k: v for k, v in opts.flags.items() if k in ("timeout", "volatile", "compress")}
    if "timeout" in flags:
        flags["timeout"] = int(flags["timeout"] * 1000)  # milliseconds on the Node side
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms), "flags": flags}


def _opts_from(raw: Any) -> BroadcastOptions:
    if not isinstance(raw, dict):
        raise ValueError("opts is not a map")
    rooms = raw.get("rooms")
    except_rooms = raw.get("except")
    rooms = [] if rooms is None else rooms  # only a missing list means "every socket"
    except_rooms = [] if except_rooms is None else except_rooms
    if not isinstance(rooms, list) or not isinstance(except_rooms, list):
        raise ValueError("rooms/except are not lists")
    return BroadcastOptions(frozenset(str(r) for r in rooms), frozenset(str(r) for r in except_rooms), {})


def _packet_dict(packet: sio.Packet) -> dict[str, Any]:
    out: dict[str, Any] = {"type": int(sio.PacketType.EVENT), "data": packet.data, "nsp": packet.nsp}
    if packet.id is not None:
        out["id"] = packet.id
    return out


def _packet_from(raw: Any, nsp: str) -> sio.Packet:
    if not isinstance(raw, dict):
        raise ValueError("packet is not a map")
    ptype = raw.get("type")
    data = raw.get("data")
    if ptype not in (int(sio.PacketType.EVENT), int(sio.PacketType.BINARY_EVENT)):
        raise ValueError(f"unexpected packet type {ptype!r}")
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise ValueError("packet data is not [event, ...]")
    if raw.get("nsp", "/") != nsp:
        raise ValueError("packet for another namespace")
    return sio.Packet(sio.PacketType.EVENT, nsp, _js_values(data))


class RedisAdapter:
    """Shares rooms and broadcasts between every server connected to one Redis.

    Pass an instance as ``Server(adapter=...)``; it makes one
    :class:`RedisNamespaceAdapter` per namespace, all sharing one publishing connection
    pool and one listening connection (a greenlet).

    Needs ``gevent.monkey.patch_all()`` (redis-py then waits cooperatively).

    :param url: ``redis://host:port/db`` (``rediss://`` for TLS).
    :param key: channel prefix, ``"socket.io"`` as on the Node adapter.
    :param requests_timeout: seconds to wait for the other servers' answers to a request.
    :param publish_on_specific_response_channel: answer requests on
        ``<key>-response#<nsp>#<uid>#`` (the Node option of the same name).
    :param on_publish_error: ``"drop"`` (log once per outage and go on) or ``"raise"``
        (:class:`PublishError` from the emitting call) when Redis is unreachable.
    :param reconnect_delay: first delay between reconnection attempts, doubled up to
        ``reconnect_max_delay``.
    :param redis_options: extra keyword arguments for ``redis.Redis.from_url``.
    :param forward_sessions: let any server answer any request of any Engine.IO session,
        forwarding it to the process that owns the session over this Redis connection
        (no sticky sessions needed; see :mod:`socketio_sync.wsgi.cluster`).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key: str = "socket.io",
        requests_timeout: float = 5.0,
        publish_on_specific_response_channel: bool = False,
        on_publish_error: str = "drop",
        reconnect_delay: float = 0.1,
        reconnect_max_delay: float = 5.0,
        redis_options: dict[str, Any] | None = None,
        forward_sessions: bool = True,
    ) -> None:
        if on_publish_error not in ("drop", "raise"):
            raise ValueError("on_publish_error must be 'drop' or 'raise'")
        if requests_timeout <= 0:
            raise ValueError("requests_timeout must be positive (seconds)")
        redis = _import_redis()
        _import_msgpack()
        from gevent import monkey

        if not monkey.is_module_patched("socket"):
            raise RuntimeError(
                "RedisAdapter needs gevent's monkey patching so that Redis I/O does not block "
                "every client: call gevent.monkey.patch_all() before anything else imports socket")
        self.url = url
        self.key = key
        self.requests_timeout = float(requests_timeout)
        self.publish_on_specific_response_channel = publish_on_specific_response_channel
        self.on_publish_error = on_publish_error
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        options = {"socket_connect_timeout": 5.0, "socket_timeout": 10.0, "health_check_interval": 30}
        options.update(redis_options or {})
        self._redis_errors: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
        self.redis = redis.Redis.from_url(url, **options)
        #: This process's id on the bus (6 characters, as the Node adapter's ``uid2(6)``).
        self.uid = secrets.token_hex(3)
        self._adapters: list[RedisNamespaceAdapter] = []
        #: Extra channels and their callbacks (session forwarding), kept across reconnects.
        self._channel_listeners: dict[str, Callable[[bytes], None]] = {}
        self.forward_sessions = forward_sessions
        self.forwarder: Any = None
        self._pubsub: Any = None
        self._sub_lock = RLock()
        self._listener: gevent.Greenlet | None = None
        self._closed = False
        self._publish_down = False
        #: Counters for monitoring and tests.
        self.stats = {"published": 0, "publish_errors": 0, "received": 0, "dropped": 0, "reconnects": 0}
        #: Connection state recovery: the stream of broadcasts kept for disconnected
        #: sockets (every namespace of the server group) and the prefix of session keys.
        self.stream_key = f"{key}:recovery"
        self.session_prefix = f"{key}:session:"
        self._next_trim = 0.0
        #: Held from XADD to local delivery, so that this process's clients get its
        #: recoverable broadcasts in stream (offset) order.
        self._stream_lock = RLock()

    def attach_engine(self, engine: Any) -> None:
        """Called by :class:`~socketio_sync.Server` with its engine: set up session
        forwarding (when ``forward_sessions``)."""
        if self.forward_sessions and self.forwarder is None:
            from ..wsgi.cluster import SessionForwarder

            self.forwarder = SessionForwarder(engine, self, request_timeout=self.requests_timeout * 2)

    # -- the bus, for session forwarding -------------------------------------------------------

    @staticmethod
    def pack(obj: Any) -> bytes:
        return _packb(obj)

    @staticmethod
    def unpack(data: bytes) -> Any:
        return _unpackb(data)

    def publish_raw(self, channel: str, message: bytes) -> int:
        """Publish and return how many subscribers got it (0: nobody listens there).
        Raises :class:`PublishError` when Redis is unreachable."""
        try:
            return int(self.redis.publish(channel, message))
        except self._redis_errors as exc:
            self.stats["publish_errors"] += 1
            raise PublishError(f"cannot publish to Redis: {exc}") from exc

    def publish_many(self, messages: list[tuple[str, bytes]]) -> list[int]:
        """Publish several messages in one round trip (a pipeline, no transaction);
        returns the subscriber counts. Raises :class:`PublishError`."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            for channel, message in messages:
                pipe.publish(channel, message)
            return [int(n) for n in pipe.execute()]
        except self._redis_errors as exc:
            self.stats["publish_errors"] += 1
            raise PublishError(f"cannot publish to Redis: {exc}") from exc

    def listen(self, channel: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback(data)`` (in the listener greenlet) for each message on ``channel``."""
        self._channel_listeners[channel] = callback
        with self._sub_lock:
            if self._pubsub is not None:
                try:
                    self._pubsub.subscribe(channel)
                except self._redis_errors as exc:
                    log.info("subscribe failed (%s); the listener will resubscribe", exc)
        if self._listener is None or self._listener.dead:
            self._listener = gevent.spawn(self._listen)
        self._wait_subscribed(channel)

    def _wait_subscribed(self, channel: str, timeout: float = 5.0) -> None:
        # A session id naming this process goes out right after: the channel must be live.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.numsub(channel) > 0:
                return
            gevent.sleep(0.01)
        log.warning("not subscribed to %s after %.0f s; forwarded requests may fail", channel, timeout)

    def __call__(self, nsp: Namespace) -> RedisNamespaceAdapter:
        adapter = RedisNamespaceAdapter(nsp, self)
        self._adapters.append(adapter)
        self._subscribe(adapter)
        if self._listener is None:
            self._listener = gevent.spawn(self._listen)
        return adapter

    # -- publishing -------------------------------------------------------------------------

    def publish(self, channel: str, message: bytes | str) -> None:
        try:
            self.redis.publish(channel, message)
        except self._redis_errors as exc:
            self.stats["publish_errors"] += 1
            if not self._publish_down:
                self._publish_down = True
                log.warning("cannot publish to Redis at %s (%s); messages for other servers are %s",
                            self.url, exc, "refused" if self.on_publish_error == "raise" else "dropped")
            if self.on_publish_error == "raise":
                raise PublishError(f"cannot publish to Redis: {exc}") from exc
            return
        if self._publish_down:
            self._publish_down = False
            log.warning("publishing to Redis at %s works again", self.url)
        self.stats["published"] += 1

    def numsub(self, channel: str) -> int:
        """Subscribers of ``channel`` (``PUBSUB NUMSUB``): the number of servers."""
        try:
            reply = self.redis.execute_command("PUBSUB", "NUMSUB", channel)
        except self._redis_errors as exc:
            log.warning("PUBSUB NUMSUB failed (%s); counting this server only", exc)
            return 1
        try:
            return int(reply[1])
        except (IndexError, TypeError, ValueError):
            return 1

    # -- listening --------------------------------------------------------------------------

    def _subscribe(self, adapter: RedisNamespaceAdapter) -> None:
        with self._sub_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                pubsub.psubscribe(adapter.channel + "*")
                pubsub.subscribe(*adapter.subscribed_channels())
            except self._redis_errors as exc:
                log.info("subscribe failed (%s); the listener will resubscribe", exc)

    def _listen(self) -> None:
        """The listener greenlet: (re)connects with backoff and dispatches messages.
        It only ends when :meth:`close` is called."""
        delay = self.reconnect_delay
        down_since: float | None = None
        while not self._closed:
            pubsub = None
            try:
                pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                with self._sub_lock:
                    for adapter in self._adapters:
                        pubsub.psubscribe(adapter.channel + "*")
                        pubsub.subscribe(*adapter.subscribed_channels())
                    if self._channel_listeners:
                        pubsub.subscribe(*self._channel_listeners)
                    self._pubsub = pubsub
                if down_since is not None:
                    self.stats["reconnects"] += 1
                    log.warning("reconnected to Redis at %s after %.1f s", self.url, time.monotonic() - down_since)
                    down_since = None
                delay = self.reconnect_delay
                while not self._closed:
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except self._redis_errors as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("lost the Redis connection at %s (%s); reconnecting with backoff", self.url, exc)
            except gevent.GreenletExit:
                raise
            except Exception:
                log.exception("the Redis listener failed; restarting it")
            finally:
                with self._sub_lock:
                    if self._pubsub is pubsub:
                        self._pubsub = None
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        pass
            if not self._closed:
                gevent.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)

    def _dispatch(self, message: dict[str, Any]) -> None:
        mtype = message.get("type")
        channel = message.get("channel")
        data = message.get("data")
        if isinstance(channel, bytes):
            channel = channel.decode("utf-8", "replace")
        if not isinstance(data, (bytes, str)) or not isinstance(channel, str):
            return
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.stats["received"] += 1
        if mtype == "message":
            callback = self._channel_listeners.get(channel)
            if callback is not None:
                try:
                    callback(data)
                except Exception:
                    self.stats["dropped"] += 1
                    log.exception("error handling a message on %s", channel)
                return
        for adapter in self._adapters:
            try:
                if mtype == "pmessage" and channel.startswith(adapter.channel):
                    adapter._on_broadcast(channel, data)
                    return
                if mtype == "message":
                    if channel.startswith(adapter.response_channel):
                        adapter._on_response(data)
                        return
                    if channel == adapter.request_channel:
                        # In the listener, in order: a join published before a broadcast
                        # must be applied before that broadcast arrives.
                        adapter._on_request_safe(data)
                        return
            except Exception as exc:
                self.stats["dropped"] += 1
                log.info("dropped a message on %s: %s", channel, exc)
                return

    def close(self) -> None:
        """Stop listening and close the connections."""
        self._closed = True
        if self._listener is not None:
            self._listener.kill(block=False)
        try:
            self.redis.close()
        except Exception:
            pass


class RedisNamespaceAdapter(Adapter):
    """The adapter of one namespace: local rooms plus the Redis bus."""

    def __init__(self, nsp: Namespace, bus: RedisAdapter) -> None:
        super().__init__(nsp)
        # Recovery state lives in Redis, not in this process.
        self._packet_log = None
        self._session_store = None
        #: sid -> stream position of the last packet replayed to that restored socket: a
        #: broadcast already in the stream when it was read, but delivered here only after
        #: the socket rejoined its rooms, is not sent twice.
        self._watermarks: dict[str, tuple[int, int]] = {}
        self.bus = bus
        self.uid = bus.uid
        prefix = bus.key
        self.channel = f"{prefix}#{nsp.name}#"
        self.request_channel = f"{prefix}-request#{nsp.name}#"
        self.response_channel = f"{prefix}-response#{nsp.name}#"
        self.specific_response_channel = f"{self.response_channel}{self.uid}#"
        self._requests: dict[str, dict[str, Any]] = {}
        self._ack_requests: dict[str, tuple[Callable[[int], None], Callable[[Any], None]]] = {}

    def subscribed_channels(self) -> list[str]:
        return [self.request_channel, self.response_channel, self.specific_response_channel]

    # -- outgoing operations ----------------------------------------------------------------

    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> None:
        if not opts.local and self.recovery is not None and self.is_recoverable(packet, opts):
            with self.bus._stream_lock:
                self.persist_packet(packet, opts)  # the offset goes to every server's clients
                self._publish_and_deliver(packet, opts)
            return
        self._publish_and_deliver(packet, opts)

    def _publish_and_deliver(self, packet: sio.Packet, opts: BroadcastOptions) -> None:
        if not opts.local:
            channel = self.channel
            if len(opts.rooms) == 1:
                channel += next(iter(opts.rooms)) + "#"
            self.bus.publish(channel, _packb([self.uid, _packet_dict(packet), _raw_opts(opts)]))
        self._broadcast_local(packet, opts)

    def _broadcast_local(self, packet: sio.Packet, opts: BroadcastOptions) -> None:
        if self._watermarks and isinstance(packet.data, list) and packet.data and packet.id is None:
            pos = _stream_pos(packet.data[-1])
            if pos is not None:
                skip = frozenset(sid for sid, mark in self._watermarks.items() if pos <= mark)
                if skip:
                    opts = BroadcastOptions(opts.rooms, opts.except_rooms | skip, opts.flags)
        super()._broadcast_local(packet, opts)

    # -- connection state recovery: Redis streams ---------------------------------------------
    #
    # One stream per server group (``<key>:recovery``): each broadcast is an entry
    # ``{"p": msgpack([nsp, data, rooms, except])}`` and its entry id is the offset the
    # clients get. Trimmed on every XADD to ``max_packets`` (``MAXLEN ~``) and at most
    # every few seconds to ``max_disconnection_duration`` (``MINID ~``, from the ids' own
    # millisecond clock). Sessions are keys ``<key>:session:<pid>`` with a PX expiry,
    # taken with GETDEL: a session is restored once, by whichever server the client
    # reaches. A local broadcast (``io.local``) is not kept: the others servers' clients
    # never got it.

    def persist_packet(self, packet: sio.Packet, opts: BroadcastOptions) -> None:
        assert self.recovery is not None
        bus = self.bus
        entry = _packb([self.nsp.name, packet.data, sorted(opts.rooms), sorted(opts.except_rooms)])
        try:
            raw_id = bus.redis.xadd(bus.stream_key, {"p": entry}, maxlen=self.recovery.max_packets,
                                    approximate=True)
        except bus._redis_errors as exc:
            log.info("cannot keep a broadcast for recovery in Redis (%s); it goes without an offset", exc)
            return
        entry_id = raw_id.decode("ascii") if isinstance(raw_id, bytes) else str(raw_id)
        packet.data.append(entry_id)  # type: ignore[union-attr]
        now = time.monotonic()
        if now >= bus._next_trim:
            duration = self.recovery.max_disconnection_duration
            bus._next_trim = now + min(10.0, duration / 4)
            try:
                threshold = int(entry_id.partition("-")[0]) - int(duration * 1000)
                bus.redis.xtrim(bus.stream_key, minid=f"{max(threshold, 0)}-0", approximate=True)
            except (ValueError, *bus._redis_errors) as exc:  # type: ignore[misc]
                log.info("could not trim the recovery stream (%s)", exc)

    def persist_session(self, session: recovery.SessionState) -> None:
        assert self.recovery is not None
        value = _packb({"nsp": self.nsp.name, "sid": session.sid, "pid": session.pid,
                        "rooms": list(session.rooms), "data": session.data})
        try:
            self.bus.redis.set(self.bus.session_prefix + session.pid, value,
                               px=max(1, int(self.recovery.max_disconnection_duration * 1000)))
        except self.bus._redis_errors as exc:
            log.warning("cannot keep the session of socket %s in Redis (%s)", session.sid, exc)

    def restore_session(self, pid: str, offset: str) -> recovery.RestoredSession | None:
        if self.recovery is None or not _STREAM_ID.fullmatch(offset):
            return None
        try:
            return self._restore_session(pid, offset)
        except self.bus._redis_errors as exc:
            log.warning("cannot restore a session from Redis (%s); the client gets a new one", exc)
            return None

    def _restore_session(self, pid: str, offset: str) -> recovery.RestoredSession | None:
        assert self.recovery is not None
        bus = self.bus
        raw = bus.redis.getdel(bus.session_prefix + pid)
        if raw is None:
            return None
        saved = _unpackb(raw)
        if (not isinstance(saved, dict) or saved.get("nsp") != self.nsp.name or saved.get("pid") != pid
                or not isinstance(saved.get("sid"), str) or not isinstance(saved.get("rooms"), list)):
            log.info("ignored a malformed or foreign recovery session %s", pid)
            return None
        rooms = [str(r) for r in saved["rooms"]]
        if not bus.redis.xrange(bus.stream_key, min=offset, max=offset, count=1):
            return None  # trimmed (too old) or never there: a fresh session
        missed: list[list[Any]] = []
        cursor = offset
        while True:
            entries = bus.redis.xrange(bus.stream_key, min="(" + cursor, max="+", count=_XRANGE_COUNT)
            for raw_id, fields in entries or ():
                cursor = raw_id.decode("ascii") if isinstance(raw_id, bytes) else str(raw_id)
                try:
                    nsp, data, to, except_rooms = _unpackb(fields[b"p"])
                except (KeyError, TypeError, ValueError) as exc:
                    bus.stats["dropped"] += 1
                    log.info("skipped a malformed recovery stream entry %s: %s", cursor, exc)
                    continue
                if nsp == self.nsp.name and isinstance(data, list) and recovery.should_include(rooms, to, except_rooms):
                    missed.append([*_js_values(data), cursor])
            if not entries or len(entries) < _XRANGE_COUNT:
                break
        sid = saved["sid"]
        mark = _stream_pos(cursor)
        if mark is not None:
            self._watermarks[sid] = mark
            gevent.spawn_later(_WATERMARK_SECONDS, self._forget_watermark, sid, mark)
        return recovery.RestoredSession(sid, pid, rooms, saved.get("data") or {}, missed)

    def _forget_watermark(self, sid: str, mark: tuple[int, int]) -> None:
        if self._watermarks.get(sid) == mark:
            del self._watermarks[sid]

    def broadcast_with_ack(self, packet: sio.Packet, opts: BroadcastOptions,
                           client_count_cb: Callable[[int], None], ack_cb: Callable[[Any], None]) -> None:
        if not opts.local:
            request_id = secrets.token_hex(3)
            self._ack_requests[request_id] = (client_count_cb, ack_cb)
            timeout = float(opts.flags.get("timeout") or self.bus.requests_timeout)
            gevent.spawn_later(timeout + 1.0, self._ack_requests.pop, request_id, None)
            self.bus.publish(self.request_channel, _packb({
                "uid": self.uid, "requestId": request_id, "type": RequestType.BROADCAST,
                "packet": _packet_dict(packet), "opts": _raw_opts(opts),
            }))
        super().broadcast_with_ack(packet, opts, client_count_cb, ack_cb)

    def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._publish_request({"type": RequestType.REMOTE_JOIN, "opts": _raw_opts(opts), "rooms": rooms})
        super().add_sockets(opts, rooms)

    def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        if not opts.local:
            self._publish_request({"type": RequestType.REMOTE_LEAVE, "opts": _raw_opts(opts), "rooms": rooms})
        super().del_sockets(opts, rooms)

    def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        if not opts.local:
            self._publish_request({"type": RequestType.REMOTE_DISCONNECT, "opts": _raw_opts(opts), "close": close})
        super().disconnect_sockets(opts, close)

    def server_count(self) -> int:
        return max(1, self.bus.numsub(self.request_channel))

    def fetch_sockets(self, opts: BroadcastOptions) -> list[Any]:
        local = super().fetch_sockets(opts)
        if opts.local:
            return local
        others = self.server_count() - 1
        if others <= 0:
            return local
        request_id = secrets.token_hex(3)
        pending: dict[str, Any] = {"type": RequestType.REMOTE_FETCH, "expected": others, "items": [],
                                   "result": AsyncResult()}
        self._requests[request_id] = pending
        try:
            self._publish_request({"type": RequestType.REMOTE_FETCH, "requestId": request_id,
                                   "opts": _raw_opts(opts)})
            try:
                pending["result"].get(timeout=self.bus.requests_timeout)
            except gevent.Timeout:
                raise RequestTimeout(
                    f"timeout reached while waiting for fetch_sockets responses "
                    f"({len(pending['items'])} of {others} servers answered)") from None
        finally:
            self._requests.pop(request_id, None)
        from ..broadcast import RemoteSocket

        remote = []
        for item in pending["items"]:
            try:
                remote.append(RemoteSocket(self.nsp, str(item["id"]), _handshake_from(item.get("handshake")),
                                           set(item.get("rooms") or ()), item.get("data")))
            except (KeyError, TypeError) as exc:
                log.info("ignored a malformed socket in a fetch_sockets response: %s", exc)
        return local + remote

    def server_side_emit(self, args: list[Any], callback: Callable[..., Any] | None = None,
                         timeout: float | None = None) -> None:
        if callback is None:
            self._publish_request({"type": RequestType.SERVER_SIDE_EMIT, "data": args})
            return
        others = self.server_count() - 1
        if others <= 0:
            callback(None, [])
            return
        request_id = secrets.token_hex(3)
        pending: dict[str, Any] = {"type": RequestType.SERVER_SIDE_EMIT, "expected": others, "items": [],
                                   "callback": callback, "done": False}
        self._requests[request_id] = pending

        def on_timeout() -> None:
            if self._requests.pop(request_id, None) is not None and not pending["done"]:
                pending["done"] = True
                items = list(pending["items"])
                callback(RequestTimeout(f"timeout reached: only {len(items)} responses received out of "
                                        f"{others}", items), items)

        pending["timer"] = gevent.spawn_later(timeout or self.bus.requests_timeout, on_timeout)
        try:
            self._publish_request({"type": RequestType.SERVER_SIDE_EMIT, "requestId": request_id, "data": args})
        except Exception:
            self._requests.pop(request_id, None)
            pending["timer"].kill(block=False)
            raise

    def _publish_request(self, request: dict[str, Any]) -> None:
        self.bus.publish(self.request_channel, _dumps({"uid": self.uid, **request}))

    def _spawn_response(self, request: dict[str, Any], response: bytes | str) -> None:
        """Publish an answer without holding up the listener."""
        gevent.spawn(self._publish_response, request, response)

    def _publish_response(self, request: dict[str, Any], response: bytes | str) -> None:
        channel = self.response_channel
        if self.bus.publish_on_specific_response_channel and isinstance(request.get("uid"), str):
            channel = f"{self.response_channel}{request['uid']}#"
        self.bus.publish(channel, response)

    # -- incoming ---------------------------------------------------------------------------

    def _on_broadcast(self, channel: str, data: bytes) -> None:
        room = channel[len(self.channel):-1]
        if room and room not in self.rooms:
            return
        decoded = _unpackb(data)
        if not isinstance(decoded, list) or len(decoded) != 3:
            raise ValueError("broadcast message is not [uid, packet, opts]")
        uid, raw_packet, raw_opts = decoded
        if uid == self.uid:
            return
        packet = _packet_from(raw_packet, self.nsp.name)
        self._broadcast_local(packet, _opts_from(raw_opts))

    def _decode_request(self, data: bytes) -> dict[str, Any]:
        request = json.loads(data) if data[:1] == b"{" else _unpackb(data)
        if not isinstance(request, dict) or not isinstance(request.get("type"), int):
            raise ValueError("request is not a map with a type")
        return request

    def _on_request_safe(self, data: bytes) -> None:
        try:
            self._on_request(self._decode_request(data))
        except Exception as exc:
            self.bus.stats["dropped"] += 1
            log.info("dropped a request on %s: %s", self.request_channel, exc)

    def _on_request(self, request: dict[str, Any]) -> None:
        rtype = request["type"]
        request_id = request.get("requestId")
        from_self = request.get("uid") == self.uid
        if rtype == RequestType.SOCKETS:
            if from_self or request_id in self._requests:
                return
            sids = list(Adapter.target_sids(self, BroadcastOptions(frozenset(request.get("rooms") or ()))))
            self._spawn_response(request, _dumps({"requestId": request_id, "sockets": sids}))
        elif rtype == RequestType.ALL_ROOMS:
            if from_self or request_id in self._requests:
                return
            self._spawn_response(request, _dumps({"requestId": request_id, "rooms": list(self.rooms)}))
        elif rtype in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.REMOTE_DISCONNECT):
            if from_self:
                return
            if "opts" in request:
                opts = _opts_from(request["opts"])
                if rtype == RequestType.REMOTE_JOIN:
                    Adapter.add_sockets(self, opts, [str(r) for r in request.get("rooms") or ()])
                elif rtype == RequestType.REMOTE_LEAVE:
                    Adapter.del_sockets(self, opts, [str(r) for r in request.get("rooms") or ()])
                else:
                    Adapter.disconnect_sockets(self, opts, bool(request.get("close")))
                return
            sock = self.nsp.sockets.get(str(request.get("sid")))
            if sock is None:
                return
            if rtype == RequestType.REMOTE_JOIN:
                sock.join(str(request.get("room")))
            elif rtype == RequestType.REMOTE_LEAVE:
                sock.leave(str(request.get("room")))
            else:
                sock.disconnect(bool(request.get("close")))
            self._spawn_response(request, _dumps({"requestId": request_id}))
        elif rtype == RequestType.REMOTE_FETCH:
            if from_self or request_id in self._requests:
                return
            opts = _opts_from(request.get("opts") or {})
            sockets = []
            for sock in Adapter.fetch_sockets(self, opts):
                hs = sock.handshake
                sockets.append({
                    "id": sock.id,
                    "handshake": {"headers": hs.headers, "time": hs.time, "address": hs.address,
                                  "xdomain": hs.xdomain, "secure": hs.secure, "issued": hs.issued,
                                  "url": hs.url, "query": hs.query, "auth": hs.auth},
                    "rooms": sorted(sock.rooms),
                    "data": sock.data,
                })
            try:
                response: bytes | str = _dumps({"requestId": request_id, "sockets": sockets})
            except TypeError:  # bytes in socket.data: MessagePack carries them (Node decodes both)
                response = _packb({"requestId": request_id, "sockets": sockets})
            self._spawn_response(request, response)
        elif rtype == RequestType.SERVER_SIDE_EMIT:
            if from_self:
                return
            args = request.get("data")
            if not isinstance(args, list):
                raise ValueError("server-side emit without a data list")
            if request_id is None:
                gevent.spawn(self.nsp._on_server_side_emit, args)  # user code: may block
                return
            answered: list[bool] = []

            def ack(value: Any) -> None:
                if answered:
                    return
                answered.append(True)
                self.bus.publish(self.response_channel, _dumps(
                    {"type": RequestType.SERVER_SIDE_EMIT, "requestId": request_id, "data": value}))

            # Like the Node server, a server with no handler for the event does not answer.
            gevent.spawn(self.nsp._on_server_side_emit, args, ack)
        elif rtype == RequestType.BROADCAST:
            if request_id in self._ack_requests or from_self:
                return
            packet = _packet_from(request.get("packet"), self.nsp.name)
            opts = _opts_from(request.get("opts"))
            timeout_ms = (request.get("opts") or {}).get("flags", {}).get("timeout")
            if isinstance(timeout_ms, (int, float)):
                opts = BroadcastOptions(opts.rooms, opts.except_rooms, {"timeout": timeout_ms / 1000})

            def on_count(count: int) -> None:
                self._spawn_response(request, _dumps({
                    "type": RequestType.BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count}))

            def on_ack(value: Any) -> None:
                self._spawn_response(request, _packb({
                    "type": RequestType.BROADCAST_ACK, "requestId": request_id, "packet": value}))

            Adapter.broadcast_with_ack(self, packet, opts, on_count, on_ack)
        else:
            log.debug("ignored request type %r", rtype)

    def _on_response(self, data: bytes) -> None:
        response = json.loads(data) if data[:1] == b"{" else _unpackb(data)
        if not isinstance(response, dict):
            raise ValueError("response is not a map")
        request_id = response.get("requestId")
        ack_request = self._ack_requests.get(request_id) if isinstance(request_id, str) else None
        if ack_request is not None:
            if response.get("type") == RequestType.BROADCAST_CLIENT_COUNT:
                ack_request[0](int(response.get("clientCount") or 0))
            elif response.get("type") == RequestType.BROADCAST_ACK:
                ack_request[1](response.get("packet"))
            return
        pending = self._requests.get(request_id) if isinstance(request_id, str) else None
        if pending is None:
            return
        if pending["type"] == RequestType.REMOTE_FETCH:
            sockets = response.get("sockets")
            if not isinstance(sockets, list):
                return
            pending["items"].extend(s for s in sockets if isinstance(s, dict))
            pending["expected"] -= 1
            if pending["expected"] <= 0:
                pending["result"].set(True)
        elif pending["type"] == RequestType.SERVER_SIDE_EMIT:
            pending["items"].append(response.get("data"))
            if len(pending["items"]) >= pending["expected"] and not pending["done"]:
                pending["done"] = True
                self._requests.pop(str(request_id), None)
                pending["timer"].kill(block=False)
                gevent.spawn(pending["callback"], None, list(pending["items"]))

    def close(self) -> None:
        self._requests.clear()
        self._ack_requests.clear()


_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
_XRANGE_COUNT = 1000
#: How long a restored socket ignores live broadcasts it already got replayed (far more
#: than a message takes through Redis pub/sub).
_WATERMARK_SECONDS = 10.0


def _stream_pos(value: Any) -> tuple[int, int] | None:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; anything else -> ``None``."""
    if not isinstance(value, str) or not _STREAM_ID.fullmatch(value):
        return None
    ms, _, seq = value.partition("-")
    return int(ms), int(seq)


def _handshake_from(raw: Any) -> Any:
    from ..socket import Handshake

    raw = raw if isinstance(raw, dict) else {}
    return Handshake(
        headers=dict(raw.get("headers") or {}), query=dict(raw.get("query") or {}),
        address=raw.get("address"), time=str(raw.get("time") or ""), issued=int(raw.get("issued") or 0),
        url=str(raw.get("url") or ""), secure=bool(raw.get("secure")), xdomain=bool(raw.get("xdomain")),
        auth=dict(raw.get("auth") or {}),
    )


class Emitter:
    """Emit to a cluster from a process that runs no server (a Celery task, a cron job).

    ::

        Emitter("redis://127.0.0.1:6379/0").of("/chat").to("room1").emit("news", {"x": 1})

    Compatible with the Node server's ``@socket.io/redis-emitter``. Needs no gevent.

    :param url: the Redis URL the servers use.
    :param key: their channel prefix.
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, key: str = "socket.io",
                 nsp: str = "/", rooms: frozenset[str] = frozenset(),
                 except_rooms: frozenset[str] = frozenset(), _redis: Any = None) -> None:
        redis = _import_redis()
        _import_msgpack()
        self.url = url
        self.key = key
        self.nsp = nsp if nsp.startswith("/") else "/" + nsp
        self.rooms = rooms
        self.except_rooms = except_rooms
        self.redis = _redis if _redis is not None else redis.Redis.from_url(url)

    def _copy(self, **changes: Any) -> Emitter:
        values: dict[str, Any] = {"key": self.key, "nsp": self.nsp, "rooms": self.rooms, "except_rooms": self.except_rooms}
        values.update(changes)
        return Emitter(self.url, _redis=self.redis, **values)

    def of(self, nsp: str) -> Emitter:
        return self._copy(nsp=nsp if nsp.startswith("/") else "/" + nsp, rooms=frozenset(),
                          except_rooms=frozenset())

    def to(self, room: str | Iterable[str]) -> Emitter:
        add = frozenset((room,)) if isinstance(room, str) else frozenset(room)
        return self._copy(rooms=self.rooms | add)

    in_ = to

    def except_(self, room: str | Iterable[str]) -> Emitter:
        add = frozenset((room,)) if isinstance(room, str) else frozenset(room)
        return self._copy(except_rooms=self.except_rooms | add)

    def _opts(self) -> dict[str, Any]:
        return {"rooms": sorted(self.rooms), "except": sorted(self.except_rooms), "flags": {}}

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to the selected sockets on every server."""
        from ..broadcast import check_event_name

        check_event_name(event)
        channel = f"{self.key}#{self.nsp}#"
        if len(self.rooms) == 1:
            channel += next(iter(self.rooms)) + "#"
        packet = {"type": int(sio.PacketType.EVENT), "data": [event, *args], "nsp": self.nsp}
        self.redis.publish(channel, _packb(["emitter", packet, self._opts()]))

    def _request(self, request: dict[str, Any]) -> None:
        self.redis.publish(f"{self.key}-request#{self.nsp}#", _dumps({"uid": "emitter", **request}))

    def sockets_join(self, room: str | Iterable[str]) -> None:
        rooms = [room] if isinstance(room, str) else list(room)
        self._request({"type": RequestType.REMOTE_JOIN, "opts": self._opts(), "rooms": rooms})

    def sockets_leave(self, room: str | Iterable[str]) -> None:
        rooms = [room] if isinstance(room, str) else list(room)
        self._request({"type": RequestType.REMOTE_LEAVE, "opts": self._opts(), "rooms": rooms})

    def disconnect_sockets(self, close: bool = False) -> None:
        self._request({"type": RequestType.REMOTE_DISCONNECT, "opts": self._opts(), "close": close})

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Run ``io.on(event)`` handlers on every server (no acks from an emitter)."""
        self._request({"type": RequestType.SERVER_SIDE_EMIT, "data": [event, *args]})
