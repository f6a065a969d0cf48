// A Node socket.io 4.8 server with @socket.io/redis-adapter 8.x (classic pub/sub), for the
// Python/Node cluster interoperability tests (tests/integration/test_redis_node_interop.py).
//
// Usage: node node_cluster_server.mjs <port> <redisUrl> [name] [adapterOptionsJson]
// Prints "LISTENING <port>" once listening (port 0 = any free port); the Redis clients are
// connected before that, and the adapter subscribes as the namespaces are created.
//
// It mirrors tests/apps/cluster_app.py: every socket gets data {server, user}; the client
// events "join", "leave", "rooms" and "op" (run any cluster operation and return its
// result) behave the same, so one test can drive a Python and a Node server alike.
// Server-side handlers: "ping-servers" (io.emit("server-side", name, ...args), acks the
// server name), "record" (remembers its arguments; "op" kind "received" lists them) and
// "slow" (acks after SLOW_MS).

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const port = Number(process.argv[2] || 0);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379/0";
const name = process.argv[4] || `node${process.pid}`;
// Extra @socket.io/redis-adapter options as JSON, e.g. {"publishOnSpecificResponseChannel": true}.
const adapterOptions = JSON.parse(process.argv[5] || "{}");
const SLOW_MS = 3000;

const pubClient = createClient({ url: redisUrl });
const subClient = pubClient.duplicate();
// An unhandled "error" event would kill the process when Redis goes away.
pubClient.on("error", (e) => process.stderr.write(`pub error: ${e.message}\n`));
subClient.on("error", (e) => process.stderr.write(`sub error: ${e.message}\n`));
await Promise.all([pubClient.connect(), subClient.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  cors: { origin: "*" },
  adapter: createAdapter(pubClient, subClient, { requestsTimeout: 2000, ...adapterOptions }),
});

const received = [];

function selection(spec) {
  let sel = spec.nsp ? io.of(spec.nsp) : io;
  for (const room of spec.to || []) sel = sel.to(room);
  for (const room of spec.except || []) sel = sel.except(room);
  if (spec.local) sel = sel.local;
  return sel;
}

function describeSocket(s) {
  return {
    id: s.id,
    rooms: [...s.rooms].sort(),
    data: s.data,
    auth: s.handshake.auth,
    // A local Socket has a client (the connection); a RemoteSocket has none.
    remote: s.client === undefined,
  };
}

async function runOp(socket, spec) {
  const sel = selection(spec);
  const args = spec.args || [];
  switch (spec.kind) {
    case "seq": {
      // The operations one after the other, in the same tick when none of them waits.
      const results = [];
      for (const sub of spec.ops) results.push(await runOp(socket, sub));
      return results;
    }
    case "emit":
      sel.emit(spec.event, ...args);
      return "done";
    case "broadcast":
      socket.broadcast.emit(spec.event, ...args);
      return "done";
    case "join":
      sel.socketsJoin(spec.room);
      return "done";
    case "leave":
      sel.socketsLeave(spec.room);
      return "done";
    case "disconnect":
      sel.disconnectSockets(spec.close || false);
      return "done";
    case "fetch": {
      const sockets = await sel.fetchSockets();
      return sockets.map(describeSocket).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    }
    case "remote_emit": {
      const sockets = await sel.fetchSockets();
      for (const s of sockets) s.emit(spec.event, ...args);
      return "done";
    }
    case "remote_join": {
      const sockets = await sel.fetchSockets();
      for (const s of sockets) s.join(spec.room);
      return "done";
    }
    case "call":
      try {
        const ok = await sel.timeout((spec.timeout ?? 2) * 1000).emitWithAck(spec.event, ...args);
        return { ok };
      } catch (err) {
        return { timeout: err.responses ?? [] };
      }
    case "emit_special":
      // Values JSON has no literal for: what Node's own clients get is their JSON form.
      // spec.date: false leaves the Date out (a string in its place).
      sel.emit(spec.event, spec.date === false ? "no date" : new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
        new Uint8Array([1, 2, 3]), { kept: 1, dropped: undefined }, [undefined, 2], new Map([["a", 1]]));
      return "done";
    case "server_side_emit":
      io.serverSideEmit(spec.event, ...args);
      return "done";
    case "server_side_call":
      try {
        return { ok: await io.serverSideEmitWithAck(spec.event, ...args) };
      } catch (err) {
        return { timeout: err.responses ?? [] };
      }
    case "server_count":
      return await io.of("/").adapter.serverCount();
    case "all_rooms":
      return [...(await io.of(spec.nsp || "/").adapter.allRooms())].sort();
    case "received":
      return received;
    default:
      throw new Error(`unknown op ${spec.kind}`);
  }
}

io.on("connection", (socket) => {
  socket.data = { server: name, user: socket.handshake.auth.user ?? null };

  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack([...socket.rooms].filter((r) => r !== socket.id).sort());
  });
  socket.on("leave", (room, ack) => {
    socket.leave(room);
    if (typeof ack === "function") ack();
  });
  socket.on("rooms", (ack) => ack([...socket.rooms].filter((r) => r !== socket.id).sort()));
  socket.on("op", (spec, ack) => {
    runOp(socket, spec).then(
      (result) => ack(result),
      (err) => ack({ error: String(err && err.message ? err.message : err) }),
    );
  });
});

const main = io.of("/");
main.on("ping-servers", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  io.emit("server-side", name, ...args);
  if (cb) cb(name);
});
main.on("record", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  received.push(args);
  if (cb) cb(name);
});
main.on("slow", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  if (cb) setTimeout(() => cb(name), SLOW_MS);
});

io.of("/chat").on("connection", (socket) => {
  socket.data = { server: name, user: socket.handshake.auth.user ?? null };
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${httpServer.address().port}\n`);
});

function shutdown() {
  io.close();
  Promise.allSettled([pubClient.quit(), subClient.quit()]).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
