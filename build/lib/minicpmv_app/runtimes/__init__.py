"""Runtimes: the exact transformers each remote-code generation's model card pins, installed on first use into
the user cache and run in a model process (``minicpmv_app.backends.process``) unless the installed transformers
already satisfies the pin."""

from .install import install, install_command, installed, runtime_dir, runtimes_root
from .pins import GENERATIONS, RUNTIMES, Runtime, generation_name, runtime_for

__all__ = [
    "GENERATIONS",
    "RUNTIMES",
    "Runtime",
    "generation_name",
    "install",
    "install_command",
    "installed",
    "runtime_dir",
    "runtime_for",
    "runtimes_root",
]
