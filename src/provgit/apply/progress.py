"""How apply tells its caller what it is doing, without knowing how it is shown."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def element_started(self, element: str, total: int) -> None: ...

    def advanced(self, element: str, done: int, total: int) -> None:
        """`done` of `total` operations of `element` have an outcome."""
        ...

    def element_finished(self, element: str, status: str) -> None: ...


class NoProgress:
    def element_started(self, element: str, total: int) -> None:
        pass

    def advanced(self, element: str, done: int, total: int) -> None:
        pass

    def element_finished(self, element: str, status: str) -> None:
        pass
