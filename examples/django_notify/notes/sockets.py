"""Socket.IO handlers (listed in settings.SOCKETIO_SYNC["HANDLERS"])."""
import socketio_sync
from socketio_sync.integrations.django import io

from .models import Notification


@io.use
def logged_in_only(socket, next):
    # socket.request is a Django HttpRequest built from the handshake (session cookie).
    if not socket.request.user.is_authenticated:
        next(socketio_sync.ConnectionRefused("log in first"))
    else:
        next()


@io.on("connection")
def on_connection(socket):
    user = socket.request.user
    socket.join(user.username)  # every tab of a user is in the room named after them

    @socket.on("history")
    def history():
        # The ORM, as in a view: the acknowledgement carries the user's notifications.
        return [n.as_dict() for n in Notification.objects.filter(user=user)]

    @socket.on("whoami")
    def whoami():
        return {"username": user.username, "id": user.id}
