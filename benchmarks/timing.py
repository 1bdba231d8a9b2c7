"""Wall-clock timing shared by the CPU benchmark scripts in this folder."""

import time

import numpy as np


def median_ms(function, repeat):
    """Median wall time of ``function()`` in milliseconds over ``repeat`` calls (after warm-up)."""
    function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))
