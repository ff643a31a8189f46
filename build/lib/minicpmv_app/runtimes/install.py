"""Install a runtime into the user cache, once, with progress; find an installed one.

A runtime is a folder of exact packages installed with ``pip install --target DIR --no-deps``. It is written to a
temporary sibling folder and renamed into place when complete, so an interrupted install is never used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from ..errors import ModelLoadError
from .pins import Runtime

log = logging.getLogger(__name__)

MANIFEST = "minicpmv-runtime.json"


def runtimes_root() -> Path:
    """``$MINICPMV_RUNTIMES``, else ``~/.cache/minicpmv-app/runtimes`` (``$XDG_CACHE_HOME`` respected)."""
    explicit = os.environ.get("MINICPMV_RUNTIMES")
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "minicpmv-app" / "runtimes"


def python_tag() -> str:
    return f"py{sys.version_info.major}{sys.version_info.minor}"


def runtime_dir(runtime: Runtime) -> Path:
    # Compiled wheels (tokenizers, sentencepiece) are per Python version.
    return runtimes_root() / f"{runtime.name}-{python_tag()}"


def installed(runtime: Runtime) -> Optional[Path]:
    folder = runtime_dir(runtime)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return folder if manifest.get("packages") == list(runtime.packages) else None


def install_command(runtime: Runtime) -> str:
    return f"python -m minicpmv_app.runtimes install {runtime.name}"


def install(runtime: Runtime, *, progress: Optional[Callable[[str], None]] = None) -> Path:
    """Install ``runtime`` unless it is there already; return its folder. Raises ``ModelLoadError`` on failure."""
    done = installed(runtime)
    if done:
        return done
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    folder = runtime_dir(runtime)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    command = _installer() + ["--target", str(partial), *runtime.packages]
    say(f"Installing the {runtime.name} runtime (first use; about 110 MB, once) into {folder}: {' '.join(runtime.packages)}")
    started = time.monotonic()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as exc:
        raise ModelLoadError(_failed(runtime, str(exc))) from exc
    tail: list[str] = []
    for line in process.stdout or ():
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-5:]
            say(f"  {line}")
    if process.wait() != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelLoadError(_failed(runtime, tail[-1] if tail else f"exit code {process.returncode}"))
    (partial / MANIFEST).write_text(json.dumps({
        "name": runtime.name, "packages": list(runtime.packages), "python": sys.version.split()[0],
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2))
    shutil.rmtree(folder, ignore_errors=True)  # a stale one with other pins
    os.replace(partial, folder)
    say(f"Installed {runtime.name} in {time.monotonic() - started:.1f} s.")
    return folder


def _installer() -> list[str]:
    """pip from this interpreter, or uv where pip is absent (uv-made venvs). Wheels only: nothing compiles."""
    flags = ["--no-deps", "--only-binary", ":all:", "--disable-pip-version-check", "--retries", "1", "--timeout", "20"]
    try:
        import pip  # noqa: F401

        return [sys.executable, "-m", "pip", "install", *flags]
    except ImportError:
        uv = shutil.which("uv")
        if not uv:
            raise ModelLoadError("Neither pip nor uv is available to install a runtime: pip install uv") from None
        return [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--only-binary", ":all:"]


def _failed(runtime: Runtime, detail: str) -> str:
    return (
        f"The {runtime.name} runtime this model needs is not installed and could not be installed ({detail[:200]}). "
        f"While online, run: {install_command(runtime)}"
    )
