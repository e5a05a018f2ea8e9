"""Who is sending a reply, and whether that process has died: a claim by a dead process is abandoned.

A claim names its process as `linux:<boot id>:<pid namespace>:<pid>:<start time>`. Another process can
only judge it when it sees the same kernel boot and the same pid namespace (the same machine and
container); then the claimant is dead when its pid is gone, is a zombie, or now belongs to a process that
started at another time (the pid was reused). Anything else (another host, another container, no /proc)
cannot be judged here, and the claim's lease decides, as it always did.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

PROC = Path("/proc")


@functools.cache
def _machine() -> str | None:
    """This kernel boot and pid namespace, or None where /proc cannot tell."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink(PROC / "self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    return f"{boot}:{namespace.removeprefix('pid:[').removesuffix(']')}"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot; None if it is gone or a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def process_identity() -> str:
    """This process, as a claim records it (no secrets: ids a local `ps` shows anyway)."""
    machine = _machine()
    pid = os.getpid()
    started = _start_time(pid) if machine else None
    if machine is None or started is None:
        return f"unknown:{os.uname().nodename}:{pid}"
    return f"linux:{machine}:{pid}:{started}"


def is_dead(identity: str | None) -> bool:
    """True only when `identity` is a process on this machine that has certainly ended."""
    if not identity or not identity.startswith("linux:"):
        return False
    try:
        _, boot, namespace, pid, started = identity.split(":", 4)
    except ValueError:
        return False
    machine = _machine()
    if machine is None or machine != f"{boot}:{namespace}" or not pid.isdigit():
        return False
    return _start_time(int(pid)) != started
