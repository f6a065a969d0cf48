// Scriptable socket.io-client sockets for the Python integration tests.
//
// Protocol: one JSON object per line on stdin (commands) and stdout (replies and
// events).  Every command carries an "id"; its reply is {"id": N, "ok": true, ...}
// or {"id": N, "ok": false, "error": "..."}.  Asynchronous happenings are lines
// without an "id": {"event": KIND, "client": NAME, ...}.
//
// Binary values (Buffer, ArrayBuffer, typed arrays) travel as {"$bin": "<base64>"}
// in both directions, nested anywhere in the arguments; Dates as {"$date": <ms>}.  Incoming {"$bin": ...,
// "$as": "arraybuffer"} is turned into an ArrayBuffer instead of a Buffer.
//
// Commands (besides "id" and "cmd"):
//   connect    client, url ("http://127.0.0.1:PORT/nsp?query"), opts (Manager/Socket
//              options: transports, auth, reconnection, ...), manager (name of a
//              Manager to share between clients; default: a Manager of its own),
//              trace (forward raw engine packets; with the msgpack parser a message's data
//              is {"$bin": ...}), opts.parser: "msgpack" (socket.io-msgpack-parser),
//              wait (default true: reply after
//              "connect" or "connect_error"), waitTimeout (ms; default 10000)
//   emit       client, name, args, ack (wait for the acknowledgement and return its
//              arguments), timeout (ms: use socket.timeout(ms).emit; the reply then has
//              "err" when the ack did not come in time)
//   emitMany   client, name, argsList -- emit NAME once per argument list, in one tick
//   ackWith    client, name, args | echo:true, delay (ms) -- answer every event NAME that
//              asks for an ack; args:null removes the rule
//   ack        client, ackId, args -- answer a recorded event that asked for an ack
//   disconnect client                -- socket.disconnect()
//   open       client                -- socket.connect() again
//   close      client                -- close the client's Manager (no reconnection)
//   closeEngine client               -- engine.close(): the Manager may reconnect
//   kill       client                -- destroy the TCP socket under a WebSocket transport
//   dropPongs  client, on (default true) -- stop answering the server's pings
//   state      client           -- {connected, sid, transport, engineId, active, ...}
//   remove     client                -- disconnect and forget
//   ping                             -- no-op, replies at once
//   exit
//
// Events: connect {sid, recovered}, connect_error {message, data, description, type},
// disconnect {reason, description}, message {name, args, ackId?, autoAcked?},
// reconnect_attempt/reconnect/reconnect_error/reconnect_failed, manager_open {engineId,
// transport, pingInterval, pingTimeout, maxPayload, upgrades},
// manager_close {reason}, manager_error, upgrade {transport}, upgrade_error,
// upgrading {transport}, packet {dir: "in"|"out", type, data} (with trace: Engine.IO
// packets; for type "message" the data is the Socket.IO packet, e.g. '0{"sid":"..."}'),
// pong_dropped, engine_close {reason}.
// Manager/engine events are sent once for each client using that Manager.

import { Manager } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import { createInterface } from "node:readline";

const clients = new Map(); // name -> {socket, managerName, ackRules, pendingAcks, nextAckId}
const managers = new Map(); // name -> {manager, origin, dropPongs, trace}

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// ---------------------------------------------------------------- encoding

function encode(value, seen = new Set()) {
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") {
    if (typeof value === "function") return { $fn: true };
    if (typeof value === "bigint") return value.toString();
    return value;
  }
  if (value instanceof Date) return { $date: value.getTime() };
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (value instanceof Error) {
    return { $error: value.message, data: encode(value.data, seen) };
  }
  if (seen.has(value)) return { $circular: true };
  seen.add(value);
  let out;
  if (Array.isArray(value)) {
    out = value.map((v) => encode(v, seen));
  } else {
    out = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) out[k] = encode(v, seen);
    }
  }
  seen.delete(value);
  return out;
}

function decode(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value.$date === "number") return new Date(value.$date);
  if (typeof value.$bin === "string") {
    const buf = Buffer.from(value.$bin, "base64");
    if (value.$as === "arraybuffer") {
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    }
    return buf;
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v);
  return out;
}

function errorInfo(err) {
  if (err === undefined || err === null) return {};
  if (!(err instanceof Error)) return { message: String(err) };
  const info = { message: err.message };
  if (err.data !== undefined) info.data = encode(err.data);
  if (err.type !== undefined) info.type = err.type;
  if (err.description !== undefined) info.description = describe(err.description);
  if (err.code !== undefined) info.code = err.code;
  return info;
}

function describe(x) {
  if (x === undefined || x === null) return null;
  if (x instanceof Error) return x.message;
  if (typeof x === "object") {
    if (x.description !== undefined) return describe(x.description);
    if (x.message !== undefined) return String(x.message);
    if (x.type !== undefined) return String(x.type);
    try {
      return JSON.stringify(x);
    } catch {
      return String(x);
    }
  }
  return String(x);
}

// ---------------------------------------------------------------- helpers

function getClient(name) {
  const c = clients.get(name);
  if (!c) throw new Error(`unknown client ${JSON.stringify(name)}`);
  return c;
}

function clientsOf(managerName) {
  const out = [];
  for (const [name, c] of clients) if (c.managerName === managerName) out.push(name);
  return out;
}

function managerEvent(managerName, kind, extra = {}) {
  for (const client of clientsOf(managerName)) {
    write({ event: kind, client, manager: managerName, ...extra });
  }
}

function packetInfo(packet) {
  const info = { type: packet.type };
  if (packet.data !== undefined) {
    info.data = typeof packet.data === "string" ? packet.data : encode(packet.data);
  }
  return info;
}

function attachEngine(managerName, entry) {
  const engine = entry.manager.engine;
  if (!engine || engine.__driverAttached) return;
  engine.__driverAttached = true;
  // Drop pongs on request: the engine answers pings through _sendPacket("pong").
  const origSend = engine._sendPacket.bind(engine);
  engine._sendPacket = (type, ...rest) => {
    if (type === "pong" && entry.dropPongs) {
      managerEvent(managerName, "pong_dropped");
      return;
    }
    return origSend(type, ...rest);
  };
  engine.on("upgrading", (t) => managerEvent(managerName, "upgrading", { transport: t && t.name }));
  engine.on("upgrade", (t) => managerEvent(managerName, "upgrade", { transport: t && t.name }));
  engine.on("upgradeError", (e) => managerEvent(managerName, "upgrade_error", errorInfo(e)));
  engine.on("close", (reason, desc) =>
    managerEvent(managerName, "engine_close", { reason, description: describe(desc) }),
  );
  if (entry.trace) {
    engine.on("packet", (p) => managerEvent(managerName, "packet", { dir: "in", ...packetInfo(p) }));
    engine.on("packetCreate", (p) =>
      managerEvent(managerName, "packet", { dir: "out", ...packetInfo(p) }),
    );
  }
}

function getManager(managerName, origin, opts, trace) {
  let entry = managers.get(managerName);
  if (entry) {
    if (entry.origin !== origin) {
      throw new Error(`manager ${managerName} is bound to ${entry.origin}, not ${origin}`);
    }
    return entry;
  }
  const manager = new Manager(origin, { autoConnect: false, ...opts });
  entry = { manager, origin, dropPongs: false, trace: !!trace };
  managers.set(managerName, entry);
  manager.on("open", () => {
    attachEngine(managerName, entry);
    const e = manager.engine;
    managerEvent(managerName, "manager_open", {
      engineId: e && e.id,
      transport: e && e.transport && e.transport.name,
      pingInterval: e && e._pingInterval,
      pingTimeout: e && e._pingTimeout,
      maxPayload: e && e._maxPayload,
      upgrades: e && e._upgrades,
    });
  });
  manager.on("error", (e) => managerEvent(managerName, "manager_error", errorInfo(e)));
  manager.on("close", (reason, desc) =>
    managerEvent(managerName, "manager_close", { reason, description: describe(desc) }),
  );
  manager.on("reconnect_attempt", (n) => managerEvent(managerName, "reconnect_attempt", { attempt: n }));
  manager.on("reconnect", (n) => managerEvent(managerName, "reconnect", { attempt: n }));
  manager.on("reconnect_error", (e) => managerEvent(managerName, "reconnect_error", errorInfo(e)));
  manager.on("reconnect_failed", () => managerEvent(managerName, "reconnect_failed"));
  return entry;
}

function stateOf(name) {
  const c = getClient(name);
  const s = c.socket;
  const engine = s.io.engine;
  return {
    client: name,
    connected: s.connected,
    disconnected: s.disconnected,
    active: s.active,
    sid: s.id ?? null,
    nsp: s.nsp,
    recovered: !!s.recovered,
    manager: c.managerName,
    managerState: s.io._readyState,
    engineId: engine ? engine.id ?? null : null,
    engineState: engine ? engine.readyState : null,
    transport: engine && engine.transport ? engine.transport.name : null,
  };
}

// ---------------------------------------------------------------- commands

async function cmdConnect(msg) {
  const name = msg.client;
  if (!name) throw new Error("connect needs a client name");
  if (clients.has(name)) throw new Error(`client ${name} exists already`);
  const url = new URL(msg.url);
  const opts = { ...(msg.opts || {}) };
  if (opts.auth !== undefined) opts.auth = decode(opts.auth);
  // parser: "msgpack" selects socket.io-msgpack-parser (a Manager option).
  if (opts.parser === "msgpack") opts.parser = msgpackParser;
  else if (opts.parser !== undefined) throw new Error(`unknown parser ${JSON.stringify(opts.parser)}`);
  if (url.search) {
    opts.query = { ...Object.fromEntries(url.searchParams), ...(opts.query || {}) };
  }
  const nsp = url.pathname && url.pathname !== "" ? url.pathname : "/";
  const managerName = msg.manager || name;
  const entry = getManager(managerName, url.origin, opts, msg.trace);
  if (entry.manager.nsps[nsp]) {
    // socket.io-client keeps one Socket per namespace and Manager.
    throw new Error(`manager ${managerName} already has a socket for ${nsp}`);
  }
  const socket = entry.manager.socket(nsp, opts);
  const c = { socket, managerName, ackRules: new Map(), pendingAcks: new Map(), nextAckId: 1 };
  clients.set(name, c);

  socket.on("connect", () => {
    attachEngine(managerName, entry);
    write({ event: "connect", client: name, sid: socket.id, recovered: !!socket.recovered });
  });
  socket.on("connect_error", (err) => write({ event: "connect_error", client: name, ...errorInfo(err) }));
  socket.on("disconnect", (reason, details) =>
    write({ event: "disconnect", client: name, reason, description: describe(details) }),
  );
  socket.onAny((event, ...args) => {
    let ackFn = null;
    if (args.length && typeof args[args.length - 1] === "function") ackFn = args.pop();
    const out = { event: "message", client: name, name: event, args: encode(args) };
    if (ackFn) {
      const rule = c.ackRules.get(event);
      if (rule) {
        out.autoAcked = true;
        const answer = rule.echo ? args : decode(rule.args);
        const fire = () => ackFn(...answer);
        if (rule.delay > 0) setTimeout(fire, rule.delay);
        else fire();
      } else {
        const ackId = c.nextAckId++;
        c.pendingAcks.set(ackId, ackFn);
        out.ackId = ackId;
      }
    }
    write(out);
  });

  const wait = msg.wait !== false;
  const done = wait
    ? new Promise((resolve) => {
        const timer = setTimeout(() => {
          cleanup();
          resolve({ connected: false, error: { message: "driver: connect wait timed out" } });
        }, msg.waitTimeout ?? 10000);
        const onConnect = () => {
          cleanup();
          resolve({ connected: true, sid: socket.id, recovered: !!socket.recovered });
        };
        const onError = (err) => {
          cleanup();
          resolve({ connected: false, error: errorInfo(err) });
        };
        function cleanup() {
          clearTimeout(timer);
          socket.off("connect", onConnect);
          socket.off("connect_error", onError);
        }
        socket.on("connect", onConnect);
        socket.on("connect_error", onError);
      })
    : null;
  socket.connect();
  if (!done) return { connected: false, pending: true };
  const result = await done;
  return { ...result, state: stateOf(name) };
}

function cmdEmit(msg) {
  const c = getClient(msg.client);
  const args = decode(msg.args || []);
  const withTimeout = msg.timeout !== undefined && msg.timeout !== null;
  if (!msg.ack) {
    (withTimeout ? c.socket.timeout(msg.timeout) : c.socket).emit(msg.name, ...args);
    return {};
  }
  return new Promise((resolve) => {
    if (withTimeout) {
      // socket.timeout() sets a flag for the next emit; the callback gets (err, ...args).
      c.socket.timeout(msg.timeout).emit(msg.name, ...args, (err, ...res) => {
        if (err) resolve({ err: err.message || String(err), args: encode(res) });
        else resolve({ args: encode(res) });
      });
    } else {
      c.socket.emit(msg.name, ...args, (...res) => resolve({ args: encode(res) }));
    }
  });
}

function cmdEmitMany(msg) {
  // Emit a burst of events in one tick (no acks): exercises batching on polling.
  const c = getClient(msg.client);
  for (const args of msg.argsList || []) c.socket.emit(msg.name, ...decode(args));
  return { count: (msg.argsList || []).length };
}

function cmdAckWith(msg) {
  const c = getClient(msg.client);
  if (msg.args === null && !msg.echo) c.ackRules.delete(msg.name);
  else c.ackRules.set(msg.name, { args: msg.args || [], echo: !!msg.echo, delay: msg.delay || 0 });
  return {};
}

function cmdAck(msg) {
  const c = getClient(msg.client);
  const fn = c.pendingAcks.get(msg.ackId);
  if (!fn) throw new Error(`no pending ack ${msg.ackId} on ${msg.client}`);
  c.pendingAcks.delete(msg.ackId);
  fn(...decode(msg.args || []));
  return {};
}

function cmdKill(msg) {
  const c = getClient(msg.client);
  const engine = c.socket.io.engine;
  const transport = engine && engine.transport;
  if (!transport || transport.name !== "websocket" || !transport.ws) {
    throw new Error(`kill needs a websocket transport (have ${transport && transport.name})`);
  }
  const raw = transport.ws._socket;
  if (!raw) throw new Error("websocket has no underlying TCP socket");
  raw.destroy();
  return {};
}

async function handle(msg) {
  switch (msg.cmd) {
    case "connect":
      return cmdConnect(msg);
    case "emit":
      return cmdEmit(msg);
    case "emitMany":
      return cmdEmitMany(msg);
    case "ackWith":
      return cmdAckWith(msg);
    case "ack":
      return cmdAck(msg);
    case "disconnect":
      getClient(msg.client).socket.disconnect();
      return {};
    case "open":
      getClient(msg.client).socket.connect();
      return {};
    case "close":
      getClient(msg.client).socket.io._close();
      return {};
    case "closeEngine": {
      const engine = getClient(msg.client).socket.io.engine;
      if (!engine) throw new Error("no engine");
      engine.close();
      return {};
    }
    case "kill":
      return cmdKill(msg);
    case "dropPongs": {
      const c = getClient(msg.client);
      managers.get(c.managerName).dropPongs = msg.on !== false;
      return {};
    }
    case "state":
      return stateOf(msg.client);
    case "remove": {
      const c = getClient(msg.client);
      c.socket.disconnect();
      clients.delete(msg.client);
      if (clientsOf(c.managerName).length === 0) {
        managers.get(c.managerName)?.manager._close();
        managers.delete(c.managerName);
      }
      return {};
    }
    case "ping":
      return { clients: [...clients.keys()] };
    case "exit":
      shutdown(0);
      return {};
    default:
      throw new Error(`unknown command ${JSON.stringify(msg.cmd)}`);
  }
}

function shutdown(code) {
  for (const c of clients.values()) {
    try {
      c.socket.disconnect();
    } catch {}
  }
  for (const m of managers.values()) {
    try {
      m.manager._close();
    } catch {}
  }
  // Leave a moment for the close frames / packets to go out.
  setTimeout(() => process.exit(code), 50);
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (e) {
    write({ event: "driver_error", message: `bad JSON: ${e.message}`, line });
    return;
  }
  Promise.resolve()
    .then(() => handle(msg))
    .then(
      (result) => write({ ...(result || {}), id: msg.id, ok: true }),
      (err) => write({ id: msg.id, ok: false, error: err && err.stack ? err.stack : String(err) }),
    );
});
rl.on("close", () => shutdown(0));
process.on("uncaughtException", (err) => {
  write({ event: "driver_error", message: err && err.stack ? err.stack : String(err) });
});
process.on("unhandledRejection", (err) => {
  write({ event: "driver_error", message: err && err.stack ? err.stack : String(err) });
});
write({ event: "ready", pid: process.pid, versions: { node: process.versions.node } });
