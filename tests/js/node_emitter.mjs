// Run operations through the official @socket.io/redis-emitter 5.x, for the interop tests.
//
// Usage: node node_emitter.mjs <redisUrl> '<json list of operations>'
// Each operation: {kind: "emit"|"join"|"leave"|"disconnect"|"server_side_emit",
//                  nsp?, to?: [rooms], except?: [rooms], event?, args?, room?, close?}
// Binary arguments travel as {"$bin": "<base64>"} and are published as Buffers.
// Prints "DONE <count>" after every message was handed to Redis, then exits.

import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";

function decode(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = decode(v);
  return out;
}

const [redisUrl, opsJson] = process.argv.slice(2);
const ops = JSON.parse(opsJson || "[]");
const client = createClient({ url: redisUrl });
client.on("error", (e) => process.stderr.write(`redis error: ${e.message}\n`));
await client.connect();
const root = new Emitter(client);

for (const op of ops) {
  let sel = op.nsp ? root.of(op.nsp) : root;
  for (const room of op.to || []) sel = sel.to(room);
  for (const room of op.except || []) sel = sel.except(room);
  const args = decode(op.args || []);
  switch (op.kind) {
    case "emit":
      sel.emit(op.event, ...args);
      break;
    case "join":
      sel.socketsJoin(op.room);
      break;
    case "leave":
      sel.socketsLeave(op.room);
      break;
    case "disconnect":
      sel.disconnectSockets(op.close || false);
      break;
    case "server_side_emit":
      sel.serverSideEmit(op.event, ...args);
      break;
    default:
      throw new Error(`unknown op ${op.kind}`);
  }
}
// PUBLISH commands are pipelined on the client; QUIT waits for their replies.
await client.quit();
process.stdout.write(`DONE ${ops.length}\n`);
