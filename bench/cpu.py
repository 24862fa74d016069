"""CPU time by process group on this machine, from /proc: where a load run's cores went.

A load run on two cores is shared by the server's workers, PostgreSQL, Redis and the load
generator; the CPU seconds each used during a run, divided by the requests served, say which
of them the throughput is bought with. Linux only (reads /proc/<pid>/stat).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, user + system CPU seconds) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ... utime stime ...": comm may hold spaces and parentheses
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(
    roots: Mapping[str, int], names: Mapping[str, Iterable[str]]
) -> dict[int, tuple[str, float]]:
    """A reading: CPU seconds so far of every process in a group, by pid. ``roots`` maps a
    group to a process whose whole tree it counts (a server and its workers); ``names`` maps a
    group to command names it counts wherever they run (``postgres``, ``redis-server``)."""
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            procs[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, tuple[str, float]] = {}
    for group, root in roots.items():
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in procs:
                out[pid] = (group, procs[pid][2])
            stack.extend(children.get(pid, ()))
    for group, comms in names.items():
        wanted = set(comms)
        out.update((pid, (group, cpu)) for pid, (comm, _, cpu) in procs.items() if comm in wanted)
    return out


def per_request_ms(
    before: Mapping[int, tuple[str, float]],
    after: Mapping[int, tuple[str, float]],
    requests: int,
) -> dict[str, float]:
    """Milliseconds of CPU per request for each group between two readings: the processes
    alive at the second reading, less what they had used at the first (a process that exited
    in between is not counted; one that started is counted whole)."""
    out = dict.fromkeys(sorted({g for g, _ in after.values()}), 0.0)
    for pid, (group, cpu) in after.items():
        out[group] += cpu - before.get(pid, (group, 0.0))[1]
    return {g: 1000 * v / max(requests, 1) for g, v in out.items()}
