"""Install runtimes ahead of time (for offline use, CI, or a Docker image).

    python -m minicpmv_app.runtimes list
    python -m minicpmv_app.runtimes install transformers-4.40      # or: --all, or: --model FOLDER
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import MiniCPMVError
from . import GENERATIONS, RUNTIMES, install, installed, runtime_for


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minicpmv_app.runtimes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="Runtimes, the generations that use them, and whether each is installed.")
    add = sub.add_parser("install", help="Install runtimes into the user cache.")
    add.add_argument("names", nargs="*", metavar="NAME", help=", ".join(RUNTIMES))
    add.add_argument("--all", action="store_true", help="Every runtime.")
    add.add_argument("--model", type=Path, help="The runtime a checkpoint folder needs.")
    args = parser.parse_args(argv)
    if args.command == "list":
        for runtime in RUNTIMES.values():
            users = ", ".join(name for name, rt in GENERATIONS.values() if rt == runtime.name)
            where = installed(runtime)
            print(f"{runtime.name:20} {'installed at ' + str(where) if where else 'not installed':60} {users}")
        return 0
    names = list(RUNTIMES) if args.all else list(args.names)
    if args.model:
        needed = runtime_for(json.loads((args.model / "config.json").read_text()))
        if needed is None:
            print(f"{args.model} needs no runtime (native transformers, or an unknown generation).")
        else:
            names.append(needed.name)
    if not names:
        parser.error("name a runtime, or use --all or --model")
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown:
        parser.error(f"unknown runtime {', '.join(unknown)}: choose from {', '.join(RUNTIMES)}")
    try:
        for name in dict.fromkeys(names):
            print(install(RUNTIMES[name]))
    except MiniCPMVError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
