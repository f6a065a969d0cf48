// Scriptable Socket.IO v2 clients (npm socket.io-client@2.5.0, installed under the alias
// socket.io-client-v2) for the allow_eio3 integration tests. Same line protocol as
// driver.mjs (JSON commands on stdin, replies and events on stdout), for the subset of
// commands those tests use:
//   connect    client, url ("http://127.0.0.1:PORT/nsp"), opts (Manager/Socket options:
//              transports, query, upgrade, forceBase64...), manager (share a Manager),
//              trace (forward engine packets), wait, waitTimeout (ms)
//   emit       client, name, args, ack (wait for the acknowledgement, return its arguments)
//   ackWith    client, name, args | echo:true -- answer every event NAME that asks for an ack
//   disconnect client;  close client (close the Manager);  state client;  ping;  exit
// Events: connect {sid}, connect_error {message, data} (the v2 client's "error" event:
// a refusal by the server, or "connect_error" for transport failures), disconnect
// {reason}, message {name, args, ackId?}, manager_open {engineId, transport,
// pingInterval, pingTimeout, upgrades}, upgrade {transport}, packet {dir, type, data}.
"use strict";

const { Manager } = require("socket.io-client-v2");
const readline = require("node:readline");

const clients = new Map(); // name -> {socket, managerName, ackRules}
const managers = new Map(); // name -> {manager, origin, trace}

function write(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function encode(value) {
  if (value === undefined) return null;
  if (value === null || typeof value !== "object") return typeof value === "function" ? { $fn: true } : value;
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(encode);
  const out = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = encode(v);
  return out;
}

function decode(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v);
  return out;
}

function errorInfo(err) {
  if (err instanceof Error) {
    const info = { message: err.message };
    if (err.description !== undefined) info.description = String(err.description && err.description.message || err.description);
    return info;
  }
  // A refusal by the server: the v2 client hands over the packet's data as it is.
  return { message: typeof err === "string" ? err : null, data: encode(err) };
}

function getClient(name) {
  const c = clients.get(name);
  if (!c) throw new Error(`unknown client ${JSON.stringify(name)}`);
  return c;
}

function managerEvent(managerName, kind, extra = {}) {
  for (const [client, c] of clients) {
    if (c.managerName === managerName) write({ event: kind, client, manager: managerName, ...extra });
  }
}

function getManager(managerName, origin, opts, trace) {
  let entry = managers.get(managerName);
  if (entry) return entry;
  const manager = new Manager(origin, { autoConnect: false, ...opts });
  entry = { manager, origin, trace: !!trace };
  managers.set(managerName, entry);
  manager.on("open", () => {
    const e = manager.engine;
    managerEvent(managerName, "manager_open", {
      engineId: e.id, transport: e.transport && e.transport.name,
      pingInterval: e.pingInterval, pingTimeout: e.pingTimeout, upgrades: e.upgrades,
    });
    e.on("upgrade", (t) => managerEvent(managerName, "upgrade", { transport: t && t.name }));
    if (entry.trace) {
      const info = (p) => ({ type: p.type, data: typeof p.data === "string" ? p.data : encode(p.data) });
      e.on("packet", (p) => managerEvent(managerName, "packet", { dir: "in", ...info(p) }));
      e.on("packetCreate", (p) => managerEvent(managerName, "packet", { dir: "out", ...info(p) }));
    }
  });
  return entry;
}

function stateOf(name) {
  const s = getClient(name).socket;
  const engine = s.io.engine;
  return {
    client: name, connected: s.connected, sid: s.id ?? null, nsp: s.nsp,
    engineId: engine ? engine.id ?? null : null,
    transport: engine && engine.transport ? engine.transport.name : null,
  };
}

async function cmdConnect(msg) {
  const name = msg.client;
  if (clients.has(name)) throw new Error(`client ${name} exists already`);
  const url = new URL(msg.url);
  const opts = { ...(msg.opts || {}) };
  const nsp = url.pathname || "/";
  const managerName = msg.manager || name;
  const entry = getManager(managerName, url.origin, opts, msg.trace);
  const socket = entry.manager.socket(nsp, opts);
  const c = { socket, managerName, ackRules: new Map() };
  clients.set(name, c);

  socket.on("connect", () => write({ event: "connect", client: name, sid: socket.id }));
  socket.on("error", (err) => write({ event: "connect_error", client: name, ...errorInfo(err) }));
  socket.on("connect_error", (err) => write({ event: "connect_error", client: name, ...errorInfo(err) }));
  socket.on("disconnect", (reason) => write({ event: "disconnect", client: name, reason }));
  // socket.io-client 2 has no onAny: record every event where the socket dispatches it.
  socket.onevent = function (packet) {
    const args = (packet.data || []).slice();
    const event = args.shift();
    const out = { event: "message", client: name, name: event, args: encode(args) };
    if (packet.id != null) {
      const rule = c.ackRules.get(event);
      if (rule) {
        out.autoAcked = true;
        this.ack(packet.id)(...(rule.echo ? args : decode(rule.args)));
      } else {
        out.ackId = packet.id;
      }
    }
    write(out);
  };

  const done = msg.wait !== false
    ? new Promise((resolve) => {
        const timer = setTimeout(() => finish({ connected: false, error: { message: "driver: connect wait timed out" } }),
          msg.waitTimeout ?? 10000);
        const onConnect = () => finish({ connected: true, sid: socket.id });
        const onError = (err) => finish({ connected: false, error: errorInfo(err) });
        function finish(result) {
          clearTimeout(timer);
          socket.off("connect", onConnect);
          socket.off("error", onError);
          socket.off("connect_error", onError);
          resolve(result);
        }
        socket.on("connect", onConnect);
        socket.on("error", onError);
        socket.on("connect_error", onError);
      })
    : null;
  socket.open();
  if (!done) return { connected: false, pending: true };
  return { ...(await done), state: stateOf(name) };
}

function cmdEmit(msg) {
  const c = getClient(msg.client);
  const args = decode(msg.args || []);
  if (!msg.ack) {
    c.socket.emit(msg.name, ...args);
    return {};
  }
  return new Promise((resolve) => c.socket.emit(msg.name, ...args, (...res) => resolve({ args: encode(res) })));
}

async function handle(msg) {
  switch (msg.cmd) {
    case "connect":
      return cmdConnect(msg);
    case "emit":
      return cmdEmit(msg);
    case "ackWith": {
      const c = getClient(msg.client);
      c.ackRules.set(msg.name, { args: msg.args || [], echo: !!msg.echo });
      return {};
    }
    case "disconnect":
      getClient(msg.client).socket.disconnect();
      return {};
    case "close":
      getClient(msg.client).socket.io.close();
      return {};
    case "state":
      return stateOf(msg.client);
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
  for (const m of managers.values()) {
    try {
      m.manager.close();
    } catch {}
  }
  setTimeout(() => process.exit(code), 50);
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
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
process.on("uncaughtException", (err) => write({ event: "driver_error", message: String(err && err.stack || err) }));
write({ event: "ready", pid: process.pid, versions: { node: process.versions.node } });
