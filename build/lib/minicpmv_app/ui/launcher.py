"""What a ``web_demo_*.py`` script does: parse options, start loading the model, build the page, serve it.

Order matters for the first page. The model process starts first, so that it imports torch and transformers on
one core while this process imports gradio on the other; the page is built as soon as the model process has said
what the page lays itself out by (its knobs), and is served while the weights still load. Nothing here imports a
UI toolkit, torch or transformers before the model process is on its way.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Optional, Sequence


def run(ui: str, *, default_model: str, default_port: int, description: str,
        argv: Optional[Sequence[str]] = None, compare: bool = False) -> None:
    """``ui``: the Gradio module under ``minicpmv_app.ui`` whose ``build_demo(chat, ...)`` makes the page.
    ``compare``: the page has a Compare tab, which may use a second model (``--compare-model``)."""
    from .. import cli, settings
    from ..allocator import limit_arenas

    limit_arenas()  # before gradio's and the model reader's threads start
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.model_arguments(parser, default_model=default_model)
    if compare:
        cli.compare_arguments(parser)
    cli.server_arguments(parser, default_port=default_port)
    cli.settings_arguments(parser)
    args = cli.parse(parser, argv)
    cli.setup_logging()
    defaults = cli.settings_defaults(args)
    chat = cli.load_chat(args)  # a local model: returns while it loads in its model process
    page = importlib.import_module(f".{ui}", __package__)
    from .gradio_common import launch

    refused = [name for name in defaults if settings.BY_NAME[name].knob and name not in chat.knobs]
    if refused and chat.status().state != "failed":
        raise SystemExit(f"error: this model does not take {', '.join(refused)}; its own settings are: "
                         f"{', '.join(chat.knobs) or 'none'}.")
    extra = {}
    if compare:
        from ..compare import Contenders

        extra["contenders"] = Contenders(chat, cli.compare_options(args))
    launch(page.build_demo(chat, lang=args.lang, defaults=defaults, **extra), args, concurrency=chat.backend.concurrency)
