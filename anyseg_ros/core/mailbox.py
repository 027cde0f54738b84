"""Single-slot mailbox between subscription callbacks and the inference worker.

The worker must always run on the newest complete frame set: a queue would make latency grow
without bound whenever inference is slower than the sensors. So ``put`` replaces whatever is
waiting (drop-oldest) and counts it; ``get`` blocks with a timeout. Modelled on
camera_calibration's BufferQueue + ConsumerThread.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """Raised by :meth:`Mailbox.get` once the mailbox is closed and empty."""


class Mailbox(Generic[T]):
    """Thread-safe single slot. Counters: ``put_count``, ``taken``, ``dropped``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.put_count = 0
        self.taken = 0
        self.dropped = 0  # items replaced before the worker took them, or put after close()

    def put(self, item: T) -> bool:
        """Store ``item``; returns True if it replaced an item nobody took (counted in dropped)."""
        with self._cond:
            self.put_count += 1
            if self._closed:
                self.dropped += 1
                return True
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """The waiting item, waiting up to ``timeout`` seconds (None: forever) for one.

        Returns None on timeout; raises :class:`MailboxClosed` once closed and empty.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                raise MailboxClosed()
            item, self._item, self._full = self._item, None, False
            self.taken += 1
            return item

    def close(self) -> None:
        """Wake every waiting ``get``; later puts are dropped. An item already waiting can still
        be taken, after which ``get`` raises MailboxClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return int(self._full)
