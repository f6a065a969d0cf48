// Load for the session-forwarding tests (tests/integration/test_cluster.py, issue #7):
// many socket.io-client instances against tests/apps/rr_app.py behind a round-robin proxy.
//
//   node rr_load.mjs '{"url": "http://127.0.0.1:PORT", "clients": 200, "seconds": 60,
//                      "transports": ["polling"], "rooms": 20}'
//
// Every client connects (its own Manager), joins room r<i % rooms>, then until the end:
// an echo with an ack every ~1 s (the answer must be the same payload), and every ~2 s a
// "shout" to its room, which the server broadcasts to the room. At the end (after a
// settle of 2 s) every client must have every shout of its room, in order per sender.
//
// A "kill" file (cfg.kill_signal_file): when it appears, the driver notes the time; from
// then on disconnects are expected for some clients and are reported by engine-id prefix
// (the owner node) instead of counted as errors. Output: one JSON line on stdout.
import { io } from "socket.io-client";
import { existsSync } from "node:fs";

const cfg = JSON.parse(process.argv[2] || "{}");
const CLIENTS = cfg.clients ?? 200;
const SECONDS = cfg.seconds ?? 30;
const ROOMS = cfg.rooms ?? 20;
const TRANSPORTS = cfg.transports ?? ["polling"];
const ACK_TIMEOUT = cfg.ack_timeout_ms ?? 10000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const errors = [];
const counts = { acks: 0, ack_errors: 0, shouts: 0, deliveries: 0, disconnects: 0, reconnects: 0,
                 upgrades: 0, connect_errors: 0 };
const err = (msg) => { if (errors.length < 30) errors.push(msg); };
const disconnectsByOwner = {};
let killedAt = null;

const clients = [];
function makeClient(i) {
  const socket = io(cfg.url, { transports: TRANSPORTS, forceNew: true, reconnectionDelay: 200,
                               reconnectionDelayMax: 1000, timeout: 20000 });
  const c = { i, socket, room: `r${i % ROOMS}`, got: new Map(), engineIds: [], seq: 0, ready: false,
              disconnected: 0 };
  socket.on("connect", () => {
    c.engineIds.push(socket.io.engine.id);
    socket.io.engine.on("upgrade", () => { counts.upgrades++; });
    if (c.pid === undefined) socket.emit("whoami", (pid) => { c.pid ??= pid; });  // the owner's pid
    socket.emit("join", c.room, () => { c.ready = true; });
    if (c.disconnected) counts.reconnects++;
  });
  socket.on("connect_error", (e) => { counts.connect_errors++; err(`client ${i}: connect_error ${e.message}`); });
  socket.on("disconnect", (reason) => {
    counts.disconnects++;
    c.disconnected++;
    const owner = (c.engineIds.at(-1) || "").slice(0, 8);
    disconnectsByOwner[owner] = (disconnectsByOwner[owner] || 0) + 1;
    if (killedAt === null) err(`client ${i}: disconnect (${reason}) at ${Date.now()}`);
  });
  socket.on("shouted", (sender, seq) => {
    counts.deliveries++;
    const prev = c.got.get(sender) ?? -1;
    if (seq !== prev + 1 && killedAt === null) err(`client ${i}: shout ${seq} of ${sender} after ${prev}`);
    c.got.set(sender, seq);
  });
  return c;
}

function ack(c, event, ...args) {
  return new Promise((resolve) => {
    c.socket.timeout(ACK_TIMEOUT).emit(event, ...args, (e, ...answer) => resolve(e ? { error: e } : { answer }));
  });
}

async function loop(c, until) {
  let n = 0;
  while (Date.now() < until) {
    await sleep(500 + Math.random() * 1000);
    if (!c.socket.connected) continue;
    const payload = { i: c.i, n: n++, s: "é".repeat(n % 5) };
    const r = await ack(c, "echo", payload);
    if (r.error || JSON.stringify(r.answer[0]) !== JSON.stringify(payload)) {
      counts.ack_errors++;
      c.ackErrors = (c.ackErrors || 0) + 1;
      if (killedAt === null) err(`client ${c.i}: echo ${JSON.stringify(r)}`);
    } else counts.acks++;
    if (n % 2 === 0 && c.socket.connected) {
      const seq = c.seq;
      const s = await ack(c, "shout", c.room, seq);
      if (s.error) { counts.ack_errors++; c.ackErrors = (c.ackErrors || 0) + 1; if (killedAt === null) err(`client ${c.i}: shout ${s.error}`); }
      else { c.seq++; counts.shouts++; }
    }
    if (cfg.kill_signal_file && killedAt === null && existsSync(cfg.kill_signal_file)) killedAt = Date.now();
  }
}

for (let i = 0; i < CLIENTS; i++) {
  clients.push(makeClient(i));
  if (i % 20 === 19) await sleep(50);
}
const start = Date.now();
while (clients.some((c) => !c.ready) && Date.now() - start < 30000) await sleep(100);
const notReady = clients.filter((c) => !c.ready).length;
if (notReady) err(`${notReady} clients not connected and joined after 30 s`);
process.stderr.write(`all ${CLIENTS} clients in their rooms after ${Date.now() - start} ms\n`);
const until = Date.now() + SECONDS * 1000;
await Promise.all(clients.map((c) => loop(c, until)));
await sleep(2000);

// Every client must have every shout of its room's members (shouts are numbered from 0).
let lost = 0;
if (!cfg.kill_signal_file) {
  const sent = new Map(clients.map((c) => [c.socket.id, c]));
  for (const c of clients) {
    for (const other of clients) {
      if (other.room !== c.room || other.seq === 0) continue;
      const last = c.got.get(other.socket.id) ?? -1;
      if (last !== other.seq - 1) { lost += other.seq - 1 - last; err(`client ${c.i}: last shout of ${other.i} ${last}, sent ${other.seq}`); }
    }
  }
  void sent;
}
const owners = {};
for (const c of clients) {
  const o = (c.engineIds[0] || "").slice(0, 8);
  owners[o] = (owners[o] || 0) + 1;
}
const result = { ...counts, lost, errors, owners, disconnects_by_owner: disconnectsByOwner,
                 clients_with_ack_errors: clients.filter((c) => c.ackErrors).map((c) => c.engineIds[0].slice(0, 8)),
                 clients_with_disconnects: clients.filter((c) => c.disconnected).map((c) => c.engineIds[0].slice(0, 8)),
                 still_connected: clients.filter((c) => c.socket.connected).length, killed_at: killedAt,
                 per_client: clients.map((c) => ({ e: c.engineIds.map((x) => x.slice(0, 8)), d: c.disconnected, p: c.pid,
                                                   a: c.ackErrors || 0, t: c.socket.io.engine?.transport?.name })),
                 on_websocket: clients.filter((c) => c.socket.io.engine?.transport?.name === "websocket").length };
process.stdout.write(JSON.stringify({ result }) + "\n");
for (const c of clients) c.socket.disconnect();
process.exit(0);
