"""Reading the user's files without being stopped by them.

A workspace can hold more than regular files under names that look like code: a named
pipe (``open`` waits for a writer for ever), a socket, a device (endless or blocking
reads).  Every read of a workspace file goes through here: the file is opened without
blocking, checked to be a regular file on the descriptor itself (so a swap between a check
and the open cannot slip through), and read to a size limit (a file that grows while it is
read cannot push past it).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_regular(path: Path | str, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ``OSError`` for anything else."""
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"larger than {max_bytes:,} bytes", str(path))
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise OSError(errno.EFBIG, f"grew past {max_bytes:,} bytes while read", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_text(path: Path | str, max_bytes: int, errors: str = "strict") -> str:
    """``read_regular`` decoded as UTF-8 (``UnicodeDecodeError`` with ``errors="strict"``)."""
    return read_regular(path, max_bytes).decode("utf-8", errors)
