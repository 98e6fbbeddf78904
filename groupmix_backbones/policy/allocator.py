"""glibc's malloc thresholds for large tensors on the CPU: the train, test, infer and benchmark
tools keep freed large blocks (:func:`keep_freed_cpu_memory`); memory readings return them
(:func:`returning_freed_cpu_memory`). Nothing here runs on import."""
import contextlib
import ctypes

_MALLOC_DEFAULT = 128 << 10  # glibc's initial mmap and trim thresholds
_malloc_limit = _MALLOC_DEFAULT


def keep_freed_cpu_memory(limit: int = 1 << 30) -> bool:
    """Let glibc's malloc reuse freed blocks of up to ``limit`` bytes instead of returning them to
    the OS. By default every block over 32 MiB is unmapped when freed and page-faulted back on the
    next allocation, which is most of the time of elementwise ops on large maps (a 128 MiB GELU:
    61 -> 18 ms; FLatten-PVT-T at 1024x1024: 1.26 -> 0.80 s). Peak memory is unchanged; memory
    freed below ``limit`` stays with the process. Returns False where there is no glibc."""
    global _malloc_limit
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    if libc.mallopt(m_mmap_threshold, limit) and libc.mallopt(m_trim_threshold, limit):
        _malloc_limit = limit
        return True
    return False


@contextlib.contextmanager
def returning_freed_cpu_memory():
    """glibc's default thresholds for the duration (large blocks unmapped when freed, so that the
    resident set follows the live tensors, as peak-memory readings need), then the setting of
    :func:`keep_freed_cpu_memory` again if it was on."""
    limit = _malloc_limit
    keep_freed_cpu_memory(_MALLOC_DEFAULT)
    try:
        yield
    finally:
        keep_freed_cpu_memory(limit)
