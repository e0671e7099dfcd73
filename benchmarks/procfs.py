"""What the benchmarks read about a process in ``/proc``: CPU, memory, descriptors, sockets."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

#: ``st`` of ``/proc/net/tcp``: the states the benchmarks look for.
ESTABLISHED = "01"
LISTEN = "0A"


@dataclasses.dataclass(frozen=True)
class TcpSocket:
    """One line of ``/proc/<pid>/net/tcp`` or ``tcp6``."""

    local_port: int
    remote_port: int
    state: str
    inode: str


def tcp_sockets(pid: int | str = "self") -> list[TcpSocket]:
    """Every IPv4 and IPv6 TCP socket of the network namespace of process ``pid``."""
    found = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                found.append(
                    TcpSocket(
                        local_port=int(fields[1].rsplit(":", 1)[1], 16),
                        remote_port=int(fields[2].rsplit(":", 1)[1], 16),
                        state=fields[3],
                        inode=fields[9],
                    )
                )
    return found


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open (empty if it is gone)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    return inodes


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections that process ``pid`` holds to a remote ``port``.

    Exact: the sockets of the namespace's TCP tables whose inode is one of
    the process's open descriptors.
    """
    own = socket_inodes(pid)
    return sum(
        1
        for sock in tcp_sockets(pid)
        if sock.state == ESTABLISHED and sock.remote_port == port and sock.inode in own
    )


def listener_pid(port: int) -> int | None:
    """The pid of a process listening on TCP ``port`` on this machine, or None."""
    listening = {s.inode for s in tcp_sockets() if s.state == LISTEN and s.local_port == port}
    if not listening:
        return None
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and socket_inodes(int(entry.name)) & listening:
            return int(entry.name)
    return None


def cpu_ns(pid: int) -> int | None:
    """Nanoseconds process ``pid`` has run on a CPU, over its live threads, or None.

    Read from each thread's ``schedstat``: nanoseconds where ``stat`` counts
    clock ticks (10 ms), too coarse for an idle process. Threads that have
    ended are not counted, so use it over spans in which none end.
    """
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def rss_mib(pid: int) -> float | None:
    """The resident set (``VmRSS``) of process ``pid`` in MiB, or None."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def open_fds(pid: int) -> int | None:
    """How many descriptors process ``pid`` has open, or None."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
