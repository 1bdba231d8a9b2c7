"""Gather the newest frame of several cameras into one batch, waiting at most a short window.

Each camera has a one-deep mailbox (the newest frame wins; a replaced frame is counted as
dropped in that camera's FrameStats). ``take_batch`` returns as soon as every *active* camera
has a frame pending, or when the oldest pending frame has waited ``window_s``: a camera never
waits longer than the window for another, and a camera that has gone silent (no frame for
``active_s``) is not waited for at all. With one camera nothing ever waits.
"""

import threading
import time


class CameraBatcher:
    """Per-camera mailboxes feeding one batched consumer (the pipeline worker)."""

    def __init__(self, stats, window_s, active_s=1.0, clock=time.monotonic):
        self._stats = list(stats)
        self.window_s = float(window_s)
        self.active_s = float(active_s)
        self._clock = clock
        self._cond = threading.Condition()
        count = len(self._stats)
        self._items = [None] * count
        self._pending_since = [None] * count
        self._last_put = [None] * count
        self._closed = False

    def put(self, camera, item):
        """Offer camera `camera`'s newest frame; its pending older frame is dropped (counted)."""
        with self._cond:
            if self._closed:
                self._stats[camera].on_dropped()
                return
            now = self._clock()
            if self._items[camera] is not None:
                self._stats[camera].on_dropped()
            else:
                self._pending_since[camera] = now
            self._items[camera] = item
            self._last_put[camera] = now
            self._cond.notify()

    def _pending(self):
        return [i for i, item in enumerate(self._items) if item is not None]

    def _awaited(self, now):
        """Cameras worth waiting for: those that delivered a frame recently."""
        return [i for i, last in enumerate(self._last_put)
                if last is not None and now - last <= self.active_s]

    def take_batch(self, timeout=None):
        """Wait for frames; return [(camera, item), ...] (empty on timeout or once closed)."""
        with self._cond:
            if not self._pending() and not self._closed:
                self._cond.wait(timeout)
            while not self._closed:
                pending = self._pending()
                if not pending:
                    return []
                now = self._clock()
                if set(self._awaited(now)) <= set(pending):
                    break
                remaining = min(self._pending_since[i] for i in pending) + self.window_s - now
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._closed:
                return []
            batch = [(i, self._items[i]) for i in self._pending()]
            for camera, _ in batch:
                self._items[camera] = None
                self._pending_since[camera] = None
            return batch

    def close(self):
        """Wake the consumer for shutdown; frames still pending count as dropped."""
        with self._cond:
            for camera in self._pending():
                self._stats[camera].on_dropped()
                self._items[camera] = None
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self):
        """Whether close() was called."""
        return self._closed
