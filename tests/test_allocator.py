"""The app's processes cap glibc's malloc arenas (the UI's memory stays level over a long session)."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux) only")

# Eight threads allocate at once; glibc's malloc_stats then lists one "Arena n:" block per pool.
BUSY_THREADS = textwrap.dedent("""
    import ctypes, sys, threading
    from minicpmv_app.allocator import limit_arenas
    if sys.argv[1] == "capped":
        limit_arenas()
    start = threading.Barrier(8)
    def churn():
        start.wait()
        for _ in range(20000):
            kept = [bytes(2048) for _ in range(8)]
    threads = [threading.Thread(target=churn) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    ctypes.CDLL("libc.so.6").malloc_stats()
""")


def arenas(mode: str, **env) -> int:
    done = subprocess.run([sys.executable, "-c", BUSY_THREADS, mode], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=120, check=True)
    return done.stderr.count("Arena ")


def test_the_cap_keeps_busy_threads_to_two_arenas():
    assert arenas("uncapped") > 2  # without it, each new thread takes a pool of its own (up to 8 a core)
    assert arenas("capped") <= 2


def test_a_value_the_user_set_wins():
    assert arenas("capped", MALLOC_ARENA_MAX="4") == 4
