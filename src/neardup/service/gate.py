"""How many requests a pool takes: a :class:`Gate` admits up to its capacity (running or waiting)
and refuses the rest, which the caller answers 503."""

from __future__ import annotations

import threading


class Gate:
    """Requests admitted to a pool (running or waiting); more than ``capacity`` are refused."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.count = capacity, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.count >= self.capacity:
                return False
            self.count += 1
            return True

    def leave(self, _: object = None) -> None:
        """One request done (or dropped); usable as a future's done callback."""
        with self._lock:
            self.count -= 1


__all__ = ["Gate"]
