"""Fewer glibc malloc arenas in the app's long-lived processes.

glibc gives each new thread a pool ("arena") of its own, up to 8 per core, and memory freed into one pool is rarely
returned. The app's Gradio worker threads then fill several pools by turns: over 500 mixed turns the UI
process rose from 295 to 371 MB (+25%) in one step, and the model process went up and down by 15%. With 2 arenas the
same turns reached their level by warm-up and stayed within 2% (UI 367 -> 373 MB, model process 1006 -> 1002 MB;
bench/reliability.py --new-rows, README "nothing lost"). This is the setting Heroku and others recommend for
threaded Python servers (``MALLOC_ARENA_MAX=2``); a value the user set in the environment wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap this process's malloc arenas (glibc on Linux only; elsewhere nothing happens). Call it before threads
    start: arenas already made stay. Returns whether the cap was set."""
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, count))
    except (OSError, AttributeError):  # not glibc (musl, for one)
        return False
