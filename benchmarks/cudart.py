"""libcudart through ctypes for the GPU benchmarks (timing events, pinned memory, sync).

Loaded once; looks where CUDA wheels (site-packages/nvidia/...) and toolkits put it.
"""

import ctypes
import functools
import glob
import os
import sys


@functools.lru_cache(maxsize=1)
def cudart():
    """Load libcudart once (ctypes.CDLL); raise OSError when there is none."""
    names = ['libcudart.so', 'libcudart.so.13', 'libcudart.so.12']
    for entry in sys.path:
        names += sorted(glob.glob(os.path.join(entry, 'nvidia', '**', 'libcudart.so*'),
                                  recursive=True))
    names += sorted(glob.glob('/usr/local/cuda*/lib64/libcudart.so*'))
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise OSError('libcudart not found: put the CUDA runtime on LD_LIBRARY_PATH')


def check(code, what):
    """Raise RuntimeError for a non-zero CUDA status."""
    if code != 0:
        raise RuntimeError(f'{what} failed with CUDA error {code}')


def synchronize():
    """cudaDeviceSynchronize."""
    check(cudart().cudaDeviceSynchronize(), 'cudaDeviceSynchronize')
