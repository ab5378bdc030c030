"""Who owns a journal row: more than a PID, because PIDs are reused.

A container restarts its kernel as PID 1 again, and a PID alone then claims that a row left
``submitting`` by the dead kernel is still in flight, forever. An owner is
``host/boot/pid/start/token``: the boot id and the process's start time (Linux ``/proc``)
tell a reused PID from the live one, and the random token tells this process (and a
forked child, which gets a new token) apart from any other. Another host's process
cannot be probed, so its rows are judged by their heartbeat lease.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Owner", "current_owner", "owner_alive"]

#: A row of another host is presumed dead once its heartbeat is older than this.
LEASE_SECONDS = 120.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return ""
    after_name = stat.rpartition(")")[2].split()
    return after_name[19] if len(after_name) > 19 else ""


@dataclass(frozen=True)
class Owner:
    host: str
    boot: str
    pid: int
    start: str
    token: str

    def __str__(self) -> str:
        return f"{self.host}/{self.boot}/{self.pid}/{self.start}/{self.token}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        parts = text.split("/")
        if len(parts) != 5 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3], parts[4])


_current: Owner | None = None


def current_owner() -> Owner:
    """This process (a forked child gets its own identity on first use after the fork)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = Owner(socket.gethostname()[:64].replace("/", "_"),
                         _read("/proc/sys/kernel/random/boot_id")[:36], pid,
                         _start_ticks(pid), secrets.token_hex(6))
    return _current


def _forget_after_fork() -> None:
    global _current
    _current = None


os.register_at_fork(after_in_child=_forget_after_fork)


def owner_alive(owner_text: str, *, heartbeat_at: float | None, now: float) -> bool:
    """Whether the process that wrote a row may still be working on it."""
    me = current_owner()
    owner = Owner.parse(owner_text)
    if owner is None:
        return False                      # a row of 0.1 whose writer is long gone, or junk
    if owner.token == me.token:
        return True
    if owner.host != me.host:
        return heartbeat_at is not None and now - heartbeat_at < LEASE_SECONDS
    if owner.boot != me.boot:
        return False                      # same host, another boot: that process is gone
    if owner.pid == me.pid:
        return False                      # our PID, another token: a reused PID
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not owner.start or _start_ticks(owner.pid) == owner.start
