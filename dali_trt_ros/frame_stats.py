"""Frame accounting for diagnostics: what came in, what went out, what was dropped and why.

Thread-safe: the subscription callback, the worker thread and the diagnostics timer all touch it.
"""

import collections
import threading
import time

import numpy as np


class FrameStats:
    """Counters and a latency window; a snapshot feeds one DiagnosticStatus."""

    def __init__(self, latency_window=300):
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.failed = 0
        self.errors_by_reason = collections.Counter()
        self.last_error = ''
        self._latencies_ms = collections.deque(maxlen=latency_window)
        self._arrivals = collections.deque(maxlen=latency_window)

    def on_received(self, now=None):
        """Count one frame taken from the topic."""
        with self._lock:
            self.received += 1
            self._arrivals.append(time.monotonic() if now is None else now)

    def on_dropped(self, count=1):
        """Count frames discarded unprocessed (replaced by a newer one, or lost by DDS)."""
        with self._lock:
            self.dropped += count

    def on_processed(self, latency_s):
        """Count one frame whose outputs were published, with its processing latency."""
        with self._lock:
            self.processed += 1
            self._latencies_ms.append(latency_s * 1e3)

    def on_failed(self, error):
        """Count one frame that could not be processed, by error reason."""
        reason = getattr(error, 'reason', type(error).__name__)
        with self._lock:
            self.failed += 1
            self.errors_by_reason[reason] += 1
            self.last_error = f'{reason}: {error}'

    def snapshot(self):
        """Return a plain dict of the counters and latency/rate summaries."""
        with self._lock:
            latencies = np.array(self._latencies_ms, dtype=np.float64)
            arrivals = list(self._arrivals)
            snap = {
                'frames_received': self.received,
                'frames_processed': self.processed,
                'frames_dropped': self.dropped,
                'frames_failed': self.failed,
                'last_error': self.last_error,
            }
            snap.update({f'errors.{k}': v for k, v in sorted(self.errors_by_reason.items())})
        if latencies.size:
            snap['latency_ms_p50'] = float(np.percentile(latencies, 50))
            snap['latency_ms_p90'] = float(np.percentile(latencies, 90))
        if len(arrivals) >= 2 and arrivals[-1] > arrivals[0]:
            snap['input_rate_hz'] = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        return snap


class LatestFrameSlot:
    """A one-deep mailbox between the subscription callback and the worker thread.

    A camera is real-time data: when inference falls behind, the newest frame is the one worth
    processing. A frame replaced before the worker took it is counted as dropped, never lost
    silently.
    """

    def __init__(self, stats):
        self._stats = stats
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        """Offer a frame; a pending older frame is dropped (and counted)."""
        with self._cond:
            if self._item is not None:
                self._stats.on_dropped()
            self._item = item
            self._cond.notify()

    def take(self, timeout=None):
        """Wait for a frame; returns None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self):
        """Wake the worker for shutdown; a frame still pending counts as dropped."""
        with self._cond:
            if self._item is not None:
                self._stats.on_dropped()
                self._item = None
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self):
        """Whether close() was called."""
        return self._closed
