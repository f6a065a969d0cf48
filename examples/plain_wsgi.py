from gevent import monkey; monkey.patch_all()  # noqa: E702  (first, before anything else)
import os
import socketio_sync

io = socketio_sync.Server()

@io.on("connection")
def on_connection(socket):
    socket.broadcast.emit("user connected")    # to everyone but this socket

    @socket.on("chat message")
    def chat_message(msg):
        io.emit("chat message", msg)           # to everyone
        return "ok"                            # the ack, when the client asked for one

def hello(environ, start_response):            # any WSGI app: Flask's app.wsgi_app, Django's...
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, WSGI\n"]

app = socketio_sync.WSGIApp(io, hello)         # Socket.IO at /socket.io/, the rest to hello

if __name__ == "__main__":
    socketio_sync.run(app, "127.0.0.1", int(os.environ.get("PORT", "5000")))
