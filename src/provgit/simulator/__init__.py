"""The element side: the store a network element keeps, and its simulator server."""

from provgit.simulator.store import ElementStore

__all__ = ["ElementStore"]
