"""Fixtures shared by the integration tests."""
from tests.jsclient import node_clients  # noqa: F401  (fixture: Node socket.io-client driver)
