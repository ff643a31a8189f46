"""Apps started as people start them, each in a process of its own: wait until it serves, see where it listens,
stop it (the demo scripts' tests and the installed console commands' tests share these)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import psutil


def launch(command: list, port: int, *, cwd, env: dict, path: str = "/", timeout: float = 180) -> subprocess.Popen:
    """Start ``command`` and return once ``http://127.0.0.1:port{path}`` answers; a process that exits first fails
    the test with its output."""
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else f"{command[0]} exited")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
            return process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    process.kill()
    raise AssertionError(f"{command[0]} did not start in time")


def listening(pid: int, port: int) -> set:
    """The addresses the process, or a child it started, listens on at ``port``."""
    pids = [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    return {c.laddr.ip for p in pids for c in psutil.Process(p).net_connections(kind="inet")
            if c.status == "LISTEN" and c.laddr.port == port}


def stopped(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
