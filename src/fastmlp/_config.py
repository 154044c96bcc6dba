"""Process-wide defaults: the thread count kernels may use."""
import os

_num_threads = None


def _default_threads():
    for var in ("FASTMLP_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def get_num_threads():
    """Threads the kernels may use (FASTMLP_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs
    this process may run on). Results are bitwise identical for any value."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n):
    """Set the default thread count for models that do not set their own."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n!r}")
    _num_threads = n


def resolve_threads(n_threads):
    if n_threads is None:
        return get_num_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    return n_threads
