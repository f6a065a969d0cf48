// The Node reference server: socket.io 4.8 with its defaults and the same application as
// benchmarks/servers.py (echo acks its arguments, join joins a room and acks true, bcast
// sends "tick" to room "b" and acks with no arguments when asked). Prints "LISTENING <port>".
import { createServer } from "node:http";
import { Server } from "socket.io";

const ROOM = "b";
const http = createServer((req, res) => {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("Not Found");
});
const io = new Server(http);

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack(true);
  });
  socket.on("bcast", (msg, ack) => {
    io.to(ROOM).emit("tick", msg);
    if (typeof ack === "function") ack();
  });
});

const port = Number(process.argv[2] || 0);
http.listen(port, "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${http.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
