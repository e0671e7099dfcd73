"""Standard descriptors 0, 1 and 2 kept open, so that no file or pipe ever lands on them.

A process started with fd 1 closed (a careless init script, ``>&-``) gets
fd 1 for the next file it opens: goferd's pid file, or a fork-model child's
result pipe, would then receive every ``print()``. goferd calls
:func:`fill` first thing; a fork-model child calls :func:`for_child` before
it runs the method.
"""

from __future__ import annotations

import fcntl
import os

STDIO = (0, 1, 2)


def fill(*, null_stdin: bool = False) -> None:
    """Open ``/dev/null`` on each of fds 0, 1 and 2 that is closed.

    Args:
        null_stdin: put ``/dev/null`` on fd 0 even when it is open.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in STDIO:
            if (fd == 0 and null_stdin) or not _is_open(fd):
                os.dup2(null, fd)
    finally:
        if null not in STDIO:
            os.close(null)


def for_child(pipe: int) -> int:
    """In a forked child: stdin on ``/dev/null``, closed stdio filled, ``pipe`` above 2.

    The method has no business reading the agent's terminal, and its prints
    must not reach the pipe its result goes back on.

    Args:
        pipe: the child's result pipe.

    Returns:
        The pipe's descriptor now (another one if it was 0, 1 or 2).
    """
    if pipe in STDIO:
        moved = fcntl.fcntl(pipe, fcntl.F_DUPFD, len(STDIO))
        os.close(pipe)
        pipe = moved
    fill(null_stdin=True)
    return pipe


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True
