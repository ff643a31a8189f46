"""Write a Hugging Face Space for one model group: README front matter, app.py, requirements, the app's files.

    python scripts/make_space.py 4.6-cpu OUT_DIR         # or 4.6-zerogpu, 2.6-zerogpu (see space_template/)
    cd OUT_DIR && git init && git remote add space https://huggingface.co/spaces/USER/NAME && git push ...

The requirements are the project's lock (tested together), plus the ``spaces`` package it pins; the Gradio SDK
version is the lock's. A variant with a runtime (2.6) installs that transformers when the Space starts and puts it
ahead of the Space's own, so the model runs in the app's process, as ZeroGPU requires.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = json.loads((ROOT / "space_template" / "variants.json").read_text())
COPIED = ("chat.py", "web_demo_2.6.py", "web_demo_2.5.py", "minicpmv_app", "assets", "LICENSE")
PYTHON = "3.11"

APP = '''"""Hugging Face Space entry point, written by scripts/make_space.py (variant {variant}).

Settings: the model is MINICPMV_MODEL (default below; a Space variable overrides it); a login is MINICPMV_AUTH
("user:password", set it as a Space secret); MINICPMV_ZEROGPU_MAX_S caps the GPU seconds of one answer on ZeroGPU.
"""

import os
import sys

os.environ.setdefault("MINICPMV_MODEL", {model!r})
RUNTIME = {runtime!r}
if RUNTIME:
    # This generation's own code needs the transformers its model card pins; ZeroGPU needs the model in this
    # process, so that transformers goes first on the path before anything imports one.
    from minicpmv_app.runtimes import RUNTIMES, install

    sys.path.insert(0, str(install(RUNTIMES[RUNTIME])))

from minicpmv_app.ui.launcher import run  # noqa: E402

if __name__ == "__main__":
    run({module!r}, default_model=os.environ["MINICPMV_MODEL"], default_port=7860, description={title!r})
'''


def lock_version(package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s;]+)", (ROOT / "requirements-lock.txt").read_text(), re.M)
    if not match:
        raise SystemExit(f"{package} is not in requirements-lock.txt")
    return match.group(1)


def front_matter(variant: dict) -> str:
    return "\n".join([
        "---",
        f"title: {variant['title']}",
        "emoji: 🖼️",
        "colorFrom: indigo",
        "colorTo: blue",
        "sdk: gradio",
        f"sdk_version: {lock_version('gradio')}",
        f'python_version: "{PYTHON}"',
        "app_file: app.py",
        f"suggested_hardware: {variant['hardware']}",
        "models:",
        f"  - {variant['model']}",
        f"short_description: {variant['description'][:60]}",
        "pinned: false",
        "---",
        "",
    ])


def write_space(name: str, out: Path) -> Path:
    if name not in VARIANTS or name.startswith("_"):
        raise SystemExit(f"unknown variant {name!r}: choose from {', '.join(k for k in VARIANTS if not k.startswith('_'))}")
    variant = VARIANTS[name]
    out.mkdir(parents=True, exist_ok=True)
    for item in COPIED:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, out / item, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, out / item)
    module = {"web_demo_2.6": "gradio_26", "web_demo_2.5": "gradio_25"}[variant["demo"]]
    (out / "app.py").write_text(APP.format(variant=name, model=variant["model"], runtime=variant["runtime"],
                                           module=module, title=variant["title"]))
    (out / "requirements.txt").write_text(
        f"# The project's lock (scripts/make_space.py, variant {name}).\n" + (ROOT / "requirements-lock.txt").read_text()
    )
    guide = (ROOT / "space_template" / "README.md").read_text()
    (out / "README.md").write_text(front_matter(variant) + f"\n# {variant['title']}\n\n{variant['description']}\n\n" + guide)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", choices=[k for k in VARIANTS if not k.startswith("_")])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(write_space(args.variant, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
