"""Processes seen through /proc (Linux): alive or not, a process's descendants, their memory (VmRSS).
Used by the fault matrix (tests/loading/fault_cases.py) to tell what a server left running."""

import os
import time


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie holds no memory)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    return children


def is_load_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"modelhub.loading.worker" in cmdline.read()
    except FileNotFoundError:
        return False


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants that are alive."""
    children, tree, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        if alive(current):
            tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of one process (0 if it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def server_rss(pid: int) -> int:
    """The server's memory: its main process and the gunicorn workers under it, not the load workers."""
    return sum(rss_bytes(p) for p in process_tree(pid) if not is_load_worker(p))


def load_workers(pid: int) -> list[int]:
    return [p for p in process_tree(pid) if is_load_worker(p)]
