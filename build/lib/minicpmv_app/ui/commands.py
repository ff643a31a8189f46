"""The console commands ``pip install .`` gives (``pyproject.toml``, ``[project.scripts]``), and the one place the
demos' defaults live: the top-level ``web_demo_*.py`` scripts call the same functions, as upstream's README runs them.

    minicpmv-demo --model tiny            # web_demo_2.6.py: several images, video, few-shot, Compare tab
    minicpmv-demo-2.5 --model tiny        # web_demo_2.5.py: one image per conversation
    minicpmv-streamlit --model tiny       # streamlit run web_demo_streamlit.py -- --model tiny
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

# Upstream's demos: their default checkpoints and ports (OpenBMB/MiniCPM-V web_demo_2.5.py / web_demo_2.6.py).
DEMOS: dict[str, dict[str, Any]] = {
    "2.6": {"ui": "gradio_26", "default_model": "openbmb/MiniCPM-V-2_6", "default_port": 8885, "compare": True},
    "2.5": {"ui": "gradio_25", "default_model": "openbmb/MiniCPM-Llama3-V-2_5", "default_port": 8080},
}
# What the repository's .streamlit/config.toml says, for a command started from any folder: listen on this machine
# only, 50 MB uploads, no file watcher (it walks a .venv and burns a core), no usage statistics.
STREAMLIT_FLAGS = ("--server.address=127.0.0.1", "--server.port=8501", "--server.maxUploadSize=50",
                   "--server.headless=true", "--server.fileWatcherType=none", "--browser.gatherUsageStats=false")
STREAMLIT_SECTIONS = ("--server.", "--browser.", "--theme.", "--client.", "--logger.", "--runner.", "--global.")


def run_demo(version: str, description: str, argv: Optional[Sequence[str]] = None) -> None:
    from .launcher import run

    run(**DEMOS[version], description=description, argv=argv)


def demo_26() -> None:
    run_demo("2.6", "MiniCPM-V 2.6 and later in Gradio: several images, video, few-shot, streaming with Stop.")


def demo_25() -> None:
    run_demo("2.5", "MiniCPM-Llama3-V 2.5 in Gradio: one image per conversation, streaming with Stop.")


def split_streamlit_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Streamlit's own options (``--server.address 0.0.0.0``) from the app's (``--model tiny``), so one command
    line takes both; a person's option comes after ours and wins."""
    own, app = list(STREAMLIT_FLAGS), []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg.startswith(STREAMLIT_SECTIONS):
            own.append(arg)
            if "=" not in arg and args and not args[0].startswith("--"):
                own.append(args.pop(0))
        else:
            app.append(arg)
    return own, app


def streamlit(argv: Optional[Sequence[str]] = None) -> None:
    from streamlit.web import cli as streamlit_cli

    own, app = split_streamlit_args(sys.argv[1:] if argv is None else argv)
    page = Path(__file__).with_name("streamlit_page.py")
    sys.argv = ["streamlit", "run", str(page), *own, "--", *app]
    sys.exit(streamlit_cli.main())
