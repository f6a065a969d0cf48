// Load generator for benchmarks/run.py, built on the official socket.io-client.
//
//   node loadgen.mjs '<json config>'
//
// The config names a scenario (ack, broadcast, idle, polling, mixed), the server URL and the
// scenario's parameters. The generator talks to the runner over stdio, one JSON object a
// line on stdout:
//
//   {"sync": "start", ...}   the runner snapshots the server (CPU time, RSS, clock), then
//                            writes one line to our stdin; only then do we go on
//   {"result": {...}}        the final counts; "errors" > 0 makes the run invalid
//
// Every client is a separate socket.io-client Manager (forceNew) with reconnection off, so a
// dropped connection shows up as an error instead of being hidden by a reconnect.
//
// "transports" (default ["websocket"]) sets the clients' transports in the ack and broadcast
// scenarios: ["polling"] gives polling-only clients. In Node, socket.io-client's polling
// opens a new TCP connection for every HTTP request (xmlhttprequest-ssl without an agent
// sends "Connection: close"), so behind `gunicorn -w N` each request of one client may
// land on any worker. The result also has "failures": connect attempts and failures, HTTP
// 400s and "Session ID unknown" answers seen by the clients, unexpected disconnects and
// failed acks (scenario G reports them for servers that need sticky sessions), and
// "owners": clients per owner prefix of the Engine.IO id (socketio_sync's node id).
import { io } from "socket.io-client";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";

const cfg = JSON.parse(process.argv[2]);
const URL = cfg.url;
const ACK_TIMEOUT = cfg.ack_timeout_ms ?? 10000;
const CONNECT_TIMEOUT = cfg.connect_timeout_ms ?? 20000;
const TEXT = "hello world, this is a benchmark message";

const now = () => performance.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

// -- errors: every one is counted and a few are kept for the report -----------------------
let errors = 0;
const errorSamples = [];
function error(what) {
  errors++;
  if (errorSamples.length < 10) errorSamples.push(String(what));
}
const failures = {
  connect_attempts: 0, connect_failures: 0, http_400: 0, session_id_unknown: 0,
  unexpected_disconnects: 0, acks_ok: 0, ack_failures: 0, bodies: {},
};
// The HTTP status and body behind a transport error of socket.io-client (engine.io-client
// puts the status in `description` and the XMLHttpRequest in `context`).
function countHttpError(e) {
  const status = e && (typeof e.description === "number" ? e.description : e.description && e.description.description);
  if (status === 400) failures.http_400++;
  const ctx = e && (e.context || (e.description && e.description.context));
  const text = ctx && typeof ctx.responseText === "string" ? ctx.responseText : "";
  // Engine.IO's answer for a session this process does not hold ("Invalid session" is
  // python-engineio's wording of it).
  if (text.includes("Session ID unknown") || text.includes("Invalid session")) failures.session_id_unknown++;
  if (status) {
    const key = `${status} ${text.slice(0, 60).replace(/[A-Za-z0-9_-]{16,}/g, "<sid>")}`;
    failures.bodies[key] = (failures.bodies[key] || 0) + 1;
  }
  return status ? ` (HTTP ${status}${text ? ": " + text.slice(0, 80) : ""})` : "";
}
process.on("uncaughtException", (e) => error("uncaught: " + (e && e.stack ? e.stack : e)));
process.on("unhandledRejection", (e) => error("unhandled rejection: " + (e && e.message ? e.message : e)));

// -- the runner handshake ----------------------------------------------------------------
const waiting = [];
const rl = createInterface({ input: process.stdin });
rl.on("line", () => {
  const resolve = waiting.shift();
  if (resolve) resolve();
});
rl.on("close", () => process.exit(2)); // the runner is gone

function sync(name, data = {}) {
  return new Promise((resolve) => {
    waiting.push(resolve);
    out({ sync: name, ...data });
  });
}

// -- clients ------------------------------------------------------------------------------
function connectOne(opts) {
  failures.connect_attempts++;
  return new Promise((resolve, reject) => {
    const s = io(URL, { forceNew: true, reconnection: false, timeout: CONNECT_TIMEOUT, ...opts });
    let settled = false;
    const fail = (e) => {
      if (settled) return;
      settled = true;
      failures.connect_failures++;
      clearTimeout(timer);
      s.off("disconnect", early);
      s.close();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error("connect timeout")), CONNECT_TIMEOUT + 1000);
    // The engine can close before Socket.IO's CONNECT is answered (a polling request
    // refused by another process): with reconnection off, nothing would follow.
    const early = (reason, details) => fail(new Error(`closed before connect: ${reason}${countHttpError(details)}`));
    s.once("disconnect", early);
    s.once("connect", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.off("disconnect", early);
      s.on("disconnect", (reason, details) => {
        if (s.benchClosing) return;
        failures.unexpected_disconnects++;
        error(`unexpected disconnect: ${reason}${countHttpError(details)}`);
      });
      resolve(s);
    });
    s.once("connect_error", (e) => fail(new Error(`${e.message}${countHttpError(e)}`)));
  });
}

// Runs fn(item) over items with at most `limit` in flight.
async function mapLimit(items, limit, fn) {
  let next = 0;
  const results = new Array(items.length);
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function connectMany(n, opts, concurrency) {
  const sockets = [];
  await mapLimit(Array.from({ length: n }), concurrency, async () => {
    try {
      sockets.push(await connectOne(opts));
    } catch (e) {
      error("connect: " + (e && e.message ? e.message : e));
    }
  });
  return sockets;
}

function closeAll(sockets) {
  for (const s of sockets) {
    s.benchClosing = true;
    s.disconnect();
  }
}

function ack(s, event, ...args) {
  return new Promise((resolve, reject) => {
    s.timeout(ACK_TIMEOUT).emit(event, ...args, (err, ...res) => {
      if (err) {
        failures.ack_failures++;
        reject(err);
      } else {
        failures.acks_ok++;
        resolve(res);
      }
    });
  });
}

// Clients per owner of their Engine.IO session (the first 8 characters of the id, which is
// socketio_sync's node id; for other servers the prefix is random).
function owners(sockets) {
  const out = {};
  for (const s of sockets) {
    const id = s.io.engine && s.io.engine.id;
    if (id) out[id.slice(0, 8)] = (out[id.slice(0, 8)] || 0) + 1;
  }
  return out;
}

function percentiles(samples) {
  if (!samples.length) return { p50_ms: null, p99_ms: null, max_ms: null, mean_ms: null };
  const a = Float64Array.from(samples).sort();
  const q = (p) => a[Math.min(a.length - 1, Math.floor(p * a.length))];
  let sum = 0;
  for (const v of a) sum += v;
  return { p50_ms: q(0.5), p99_ms: q(0.99), max_ms: a[a.length - 1], mean_ms: sum / a.length };
}

const WS = { transports: ["websocket"] };
const CLIENT = { transports: cfg.transports ?? ["websocket"] };

// A measurement window: the runner snapshots the server at both ends, we count in between.
class Window {
  async open() {
    await sync("start");
    this.t0 = now();
    this.cpu0 = process.cpuUsage();
    this.measuring = true;
  }
  async close(data = {}) {
    this.measuring = false;
    this.elapsed = (now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    this.loadgenCpu = (cpu.user + cpu.system) / 1e6;
    await sync("end", data);
  }
  summary() {
    return { elapsed_s: this.elapsed, loadgen_cpu_s: this.loadgenCpu };
  }
}

// -- A / E: ack round trips, N clients in closed loop --------------------------------------
async function scenarioAck() {
  const sockets = await connectMany(cfg.clients, CLIENT, 50);
  if (sockets.length !== cfg.clients) error(`connected ${sockets.length}/${cfg.clients}`);
  const win = new Window();
  let running = true;
  let acks = 0;
  const lat = [];
  async function loop(s, id) {
    let i = 0;
    while (running && s.connected) {
      const msg = { id, i: i++, text: TEXT };
      const t0 = now();
      try {
        const res = await ack(s, "echo", msg);
        const dt = now() - t0;
        if (res.length !== 1 || res[0].id !== id || res[0].i !== msg.i || res[0].text !== TEXT) {
          error("echo mismatch: " + JSON.stringify(res).slice(0, 200));
        } else if (win.measuring) {
          acks++;
          lat.push(dt);
        }
      } catch (e) {
        error("ack: " + e.message);
      }
    }
  }
  const loops = sockets.map(loop);
  await sleep(cfg.warmup_s * 1000);
  await win.open();
  await sleep(cfg.duration_s * 1000);
  await win.close();
  running = false;
  await Promise.all(loops);
  const alive = sockets.filter((s) => s.connected).length;
  if (alive !== sockets.length) error(`${sockets.length - alive} clients lost`);
  const own = owners(sockets);
  closeAll(sockets);
  return { clients: sockets.length, acks, owners: own, ...percentiles(lat), ...win.summary() };
}

// Connects `n` clients and puts them all in room "b"; returns them, with delivery counting.
async function broadcastReceivers(n, opts = WS) {
  const sockets = await connectMany(n, opts, 50);
  if (sockets.length !== n) error(`connected ${sockets.length}/${n}`);
  await mapLimit(sockets, 100, async (s) => {
    try {
      const res = await ack(s, "join", "b");
      if (res.length !== 1 || res[0] !== true) error("join: unexpected ack " + JSON.stringify(res));
    } catch (e) {
      error("join: " + e.message);
    }
  });
  return sockets;
}

// Tracks which broadcasts reached every receiver.
class Deliveries {
  constructor(sockets, win) {
    this.n = sockets.length;
    this.win = win;
    this.pending = new Map(); // seq -> receivers so far
    this.completed = 0;
    this.measured = 0;
    this.total = 0;
    this.lastProgress = now();
    this.onComplete = () => {};
    for (const s of sockets) s.on("tick", (msg) => this.tick(msg));
  }
  tick(msg) {
    this.total++;
    if (this.win.measuring) this.measured++;
    if (!msg || typeof msg.seq !== "number" || msg.text !== TEXT) {
      error("bad tick: " + JSON.stringify(msg).slice(0, 200));
      return;
    }
    const c = (this.pending.get(msg.seq) || 0) + 1;
    if (c > this.n) error("duplicate tick");
    if (c === this.n) {
      this.pending.delete(msg.seq);
      this.completed++;
      this.lastProgress = now();
      this.onComplete();
    } else {
      this.pending.set(msg.seq, c);
    }
  }
  async drain(sent, timeoutMs) {
    const deadline = now() + timeoutMs;
    while (this.completed < sent && now() < deadline) await sleep(20);
    if (this.completed < sent) error(`${sent - this.completed} broadcasts never reached every client`);
  }
}

// -- B: broadcast to N clients, closed loop with `window` broadcasts in flight --------------
async function scenarioBroadcast() {
  const sockets = await broadcastReceivers(cfg.clients, CLIENT);
  if (!sockets.length) return { clients: 0, deliveries: 0, broadcasts: 0, sent: 0 };
  const win = new Window();
  const d = new Deliveries(sockets, win);
  const driver = sockets[0];
  let running = true;
  let sent = 0;
  const pump = () => {
    while (running && sent - d.completed < cfg.window) driver.emit("bcast", { seq: sent++, text: TEXT });
  };
  d.onComplete = pump;
  const watchdog = setInterval(() => {
    if (running && now() - d.lastProgress > 10000) {
      error("broadcast stalled for 10 s");
      d.lastProgress = now();
    }
  }, 1000);
  pump();
  await sleep(cfg.warmup_s * 1000);
  await win.open();
  const c0 = d.completed;
  await sleep(cfg.duration_s * 1000);
  const c1 = d.completed;
  await win.close();
  running = false;
  clearInterval(watchdog);
  await d.drain(sent, 10000);
  const own = owners(sockets);
  closeAll(sockets);
  return { clients: sockets.length, deliveries: d.measured, broadcasts: c1 - c0, sent, owners: own,
           ...win.summary() };
}

// -- C: memory per idle WebSocket client ----------------------------------------------------
async function scenarioIdle() {
  const warm = await connectMany(20, WS, 20);
  await Promise.all(warm.map((s) => ack(s, "echo", 1).catch((e) => error("warmup echo: " + e.message))));
  closeAll(warm);
  await sleep(1000);
  await sync("base");
  const t0 = now();
  const sockets = await connectMany(cfg.clients, WS, cfg.concurrency);
  const connectS = (now() - t0) / 1000;
  if (sockets.length !== cfg.clients) error(`connected ${sockets.length}/${cfg.clients}`);
  await sleep(cfg.settle_s * 1000);
  await sync("loaded", { connected: sockets.filter((s) => s.connected).length });
  // Every client must still be alive and served.
  let ok = 0;
  await mapLimit(sockets, 200, async (s, i) => {
    try {
      const res = await ack(s, "echo", i);
      if (res.length === 1 && res[0] === i) ok++;
      else error("echo mismatch");
    } catch (e) {
      error("echo after idle: " + e.message);
    }
  });
  closeAll(sockets);
  return { clients: sockets.length, answered: ok, connect_s: connectS };
}

// -- D: polling handshake + upgrade to WebSocket --------------------------------------------
async function pollingClient() {
  const s = await connectOne({ transports: ["polling", "websocket"] });
  const engine = s.io.engine;
  try {
    if (engine.transport.name !== "websocket") {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("upgrade timeout")), 10000);
        engine.once("upgrade", () => {
          clearTimeout(timer);
          resolve();
        });
        engine.once("upgradeError", (e) => {
          clearTimeout(timer);
          reject(new Error("upgrade error: " + (e && e.message)));
        });
      });
    }
    if (engine.transport.name !== "websocket") throw new Error("not upgraded");
  } finally {
    closeAll([s]);
  }
}

async function scenarioPolling() {
  const run = async (n) => {
    let done = 0;
    await mapLimit(Array.from({ length: n }), cfg.concurrency, async () => {
      try {
        await pollingClient();
        done++;
      } catch (e) {
        error("polling client: " + (e && e.message ? e.message : e));
      }
    });
    return done;
  };
  await run(cfg.warmup_clients);
  await sleep(300);
  const win = new Window();
  await win.open();
  const upgraded = await run(cfg.clients);
  await sleep(300); // let the server finish the last disconnects inside the window
  await win.close();
  if (upgraded !== cfg.clients) error(`upgraded ${upgraded}/${cfg.clients}`);
  return { clients: cfg.clients, upgraded, ...win.summary() };
}

// -- F: ack latency (open loop) while a broadcast load runs ----------------------------------
async function scenarioMixed() {
  const receivers = await broadcastReceivers(cfg.clients);
  const ackers = await connectMany(cfg.ack_clients, WS, 10);
  if (ackers.length !== cfg.ack_clients) error(`connected ${ackers.length}/${cfg.ack_clients} ack clients`);
  const win = new Window();
  const d = new Deliveries(receivers, win);
  const driver = receivers[0];
  const lat = [];
  let acks = 0;
  let inflight = 0;
  let bsent = 0;
  let bsentMeasured = 0;
  let stopped = false;
  const t0 = now();
  // Broadcasts at a fixed rate; acks with exponential gaps (Poisson arrivals), so that the
  // latency samples fall at random moments of the broadcast cycle instead of locking to it.
  const bcastTimer = setInterval(() => {
    const due = Math.floor(((now() - t0) / 1000) * cfg.bcast_rate);
    while (bsent < due) {
      driver.emit("bcast", { seq: bsent++, text: TEXT });
      if (win.measuring) bsentMeasured++;
    }
  }, 2);
  const meanGap = 1000 / cfg.ack_rate_per_client;
  ackers.forEach((s, id) => {
    let i = 0;
    const send = () => {
      if (stopped) return;
      const msg = { id, i: i++, text: TEXT };
      const measured = win.measuring;
      const st = now();
      inflight++;
      ack(s, "echo", msg).then(
        (res) => {
          inflight--;
          if (res.length !== 1 || res[0].i !== msg.i || res[0].id !== id) error("echo mismatch");
          else if (measured) {
            acks++;
            lat.push(now() - st);
          }
        },
        (e) => {
          inflight--;
          error("ack: " + e.message);
        },
      );
      setTimeout(send, -Math.log(1 - Math.random()) * meanGap);
    };
    setTimeout(send, Math.random() * meanGap);
  });
  await sleep(cfg.warmup_s * 1000);
  await win.open();
  await sleep(cfg.duration_s * 1000);
  await win.close();
  stopped = true;
  clearInterval(bcastTimer);
  const deadline = now() + ACK_TIMEOUT + 1000;
  while (inflight > 0 && now() < deadline) await sleep(20);
  await d.drain(bsent, 10000);
  closeAll(receivers);
  closeAll(ackers);
  return {
    clients: receivers.length,
    ack_clients: ackers.length,
    acks,
    deliveries: d.measured,
    expected_deliveries: bsentMeasured * receivers.length,
    ...percentiles(lat),
    ...win.summary(),
  };
}

const SCENARIOS = {
  ack: scenarioAck,
  broadcast: scenarioBroadcast,
  idle: scenarioIdle,
  polling: scenarioPolling,
  mixed: scenarioMixed,
};

const fn = SCENARIOS[cfg.scenario];
if (!fn) {
  out({ result: { errors: 1, error_samples: [`unknown scenario ${cfg.scenario}`] } });
  process.exit(1);
}
try {
  const result = await fn();
  out({ result: { ...result, errors, error_samples: errorSamples, failures } });
} catch (e) {
  error("scenario failed: " + (e && e.stack ? e.stack : e));
  out({ result: { errors, error_samples: errorSamples, failures } });
}
process.exit(0);
