"""Crash-safe file replacement, shared by checkpoints (callbacks.py) and model files (io.py).

``atomic_write(path, write_fn)`` writes to a temporary file in the destination's directory,
flushes and fsyncs it, renames it over ``path`` with ``os.replace`` (atomic on POSIX and
Windows) and fsyncs the directory so the rename itself survives a power cut. Whatever happens
(an exception in ``write_fn``, a full disk, a failed rename, KeyboardInterrupt), ``path`` holds
either its previous content or the complete new content, and the temporary file is removed.
"""
import errno
import os
import tempfile

__all__ = ["atomic_write"]


def _umask():
    """The process umask, read without changing it where the platform allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no read-only API elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    """Make a rename in `directory` durable (POSIX); a no-op where directories can't be opened."""
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:  # Windows: os.replace is durable enough, directories can't be fsynced
        return
    fd = os.open(directory, os.O_RDONLY | flag)
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems (and platforms) refuse fsync on a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def atomic_write(path, write_fn):
    """Replace the file at `path` by what ``write_fn(fileobj)`` writes, atomically.

    `write_fn` receives a binary file object opened for writing (seekable, a real file in the
    destination's directory) and writes the whole content. The file gets the permissions a
    plain ``open(path, "wb")`` would give (0o666 minus the umask). Returns `path`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o666 & ~_umask())
            f = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)
    return path
