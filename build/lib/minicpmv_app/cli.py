"""Command-line options shared by every demo script, and turning them into a ``MiniCPMVChat``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from typing import Any, Optional, Sequence

from .devices import DEVICES, DTYPE_CHOICES, on_zerogpu
from .errors import MiniCPMVError


def model_arguments(parser: argparse.ArgumentParser, default_model: str) -> argparse.ArgumentParser:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=os.environ.get("MINICPMV_MODEL", default_model),
                       help="Hugging Face or ModelScope id, a local checkpoint folder, or 'tiny' (offline toy model). "
                            f"Default: {default_model}")
    # On ZeroGPU the model goes to CUDA at import (the spaces package makes that work before a GPU is attached).
    device = os.environ.get("MINICPMV_DEVICE") or ("cuda" if on_zerogpu() else "auto")
    group.add_argument("--device", default=device, choices=DEVICES,
                       help="auto picks cuda, then mps, then cpu. Several GPUs are used together with --device cuda.")
    group.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                       help="auto: bf16 on recent GPUs, fp16 on older GPUs and Apple MPS, fp32 on CPU.")
    group.add_argument("--hub", default=os.environ.get("MINICPMV_HUB", "hf"), choices=["hf", "modelscope"],
                       help="Where to download model ids from.")
    group.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model.")
    group.add_argument("--in-process", action="store_true",
                       default=(os.environ.get("MINICPMV_IN_PROCESS") or "").lower() in ("1", "true", "yes"),
                       help="Load the model in the UI's own process instead of a model process of its own (the "
                            "default keeps the page responsive and survives the model crashing; ZeroGPU always "
                            "loads it here). $MINICPMV_IN_PROCESS=1 does the same.")
    server = parser.add_argument_group("model server (instead of loading the model here)")
    server.add_argument("--api-base", default=os.environ.get("MINICPMV_API_BASE"),
                        help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, llama.cpp, "
                             "Ollama, transformers serve). --model is then ignored.")
    server.add_argument("--api-key", default=os.environ.get("MINICPMV_API_KEY") or os.environ.get("OPENAI_API_KEY"))
    server.add_argument("--api-model", default=os.environ.get("MINICPMV_API_MODEL"),
                        help="Model name on the server (default: the only one it lists).")
    server.add_argument("--api-timeout", type=float, default=600.0, help="Seconds to wait for the server.")
    gguf = parser.add_argument_group("GGUF files on llama.cpp (--model FILE.gguf)")
    gguf.add_argument("--mmproj", default=os.environ.get("MINICPMV_MMPROJ"),
                      help="The vision projector's GGUF file (default: the one *mmproj*.gguf beside --model).")
    gguf.add_argument("--llama-server", default=os.environ.get("MINICPMV_LLAMA_SERVER"),
                      help="The llama-server binary (default: llama-server on PATH).")
    gguf.add_argument("--llama-server-args", default=os.environ.get("MINICPMV_LLAMA_SERVER_ARGS", ""),
                      help='More llama-server options, as one string (e.g. "-ngl 99" for a GPU build).')
    return parser


def compare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    group = parser.add_argument_group("a second model for the Compare tab (loaded when first used)")
    group.add_argument("--compare-model", default=os.environ.get("MINICPMV_COMPARE_MODEL"),
                       help="Hub id, folder or 'tiny': loaded in this process only if it fits in free memory.")
    group.add_argument("--compare-api-base", default=os.environ.get("MINICPMV_COMPARE_API_BASE"),
                       help="Or an OpenAI-compatible server for the second model.")
    group.add_argument("--compare-api-model", default=None, help="Model name on that server.")
    return parser


def compare_options(args: argparse.Namespace) -> Optional[dict]:
    """``MiniCPMVChat`` keyword arguments of the second model, or None."""
    if getattr(args, "compare_api_base", None):
        return {"api_base": args.compare_api_base, "api_key": args.api_key, "api_model": args.compare_api_model,
                "api_timeout": args.api_timeout}
    if getattr(args, "compare_model", None):
        here = getattr(args, "in_process", False) or on_zerogpu()
        return {"model_path": args.compare_model, "device": args.device, "dtype": args.dtype, "hub": args.hub,
                "process": "here" if here else "model"}
    return None


def server_arguments(parser: argparse.ArgumentParser, default_port: int) -> argparse.ArgumentParser:
    group = parser.add_argument_group("server")
    group.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                       help="Interface to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 shares it on your network.")
    group.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", default_port)))
    group.add_argument("--share", action="store_true", help="Create a temporary public gradio.live link.")
    group.add_argument("--auth", default=os.environ.get("MINICPMV_AUTH"), metavar="USER:PASSWORD",
                       help="Require this login (recommended with --share or a non-local --host).")
    group.add_argument("--max-file-size", default="50mb", help="Largest upload accepted, e.g. 20mb, 1gb.")
    group.add_argument("--max-sessions", type=int, default=1000,
                       help="Sessions kept in memory; beyond this the oldest are dropped (bounds memory on busy demos).")
    language_argument(group)
    return parser


def settings_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--temperature``, ``--max-new-tokens``, ...: the UI's starting values, one option per schema setting."""
    from . import settings

    group = parser.add_argument_group("generation settings (starting values in the UI)")
    for setting in settings.SCHEMA:
        kind = {"float": float, "int": int}.get(setting.kind, str)
        extra: dict[str, Any] = {"choices": list(setting.choices or settings.BOTH)} if setting.kind == "choice" else {}
        if setting.kind == "bool":
            extra = {"choices": ["on", "off"], "help": "on or off"}
        group.add_argument(f"--{setting.name.replace('_', '-')}", dest=f"setting_{setting.name}", type=kind,
                           default=None, **extra)
    return parser


def settings_defaults(args: argparse.Namespace) -> dict:
    """The settings given on the command line, checked against the schema (exits with the reason if not)."""
    from . import settings

    chosen = {}
    for setting in settings.SCHEMA:
        value = getattr(args, f"setting_{setting.name}", None)
        if value is not None:
            try:
                chosen[setting.name] = setting.check(value)
            except MiniCPMVError as exc:
                raise SystemExit(f"error: {exc}") from None
    return chosen


def language_argument(group) -> None:
    group.add_argument("--lang", default=os.environ.get("MINICPMV_LANG") or None, choices=["en", "zh"],
                       help="Interface language. Default: the browser's (English or 简体中文).")


def parse_auth(value: Optional[str]):
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit("--auth must look like user:password")
    return (user, password)


def build_chat(args: argparse.Namespace):
    """The ``MiniCPMVChat`` the options describe (raises ``MiniCPMVError``). A local model starts loading in a
    model process and this returns at once (``chat.status()``), unless ``--in-process`` or on ZeroGPU."""
    from .wrapper import MiniCPMVChat

    here = getattr(args, "in_process", False) or on_zerogpu()
    return MiniCPMVChat(
        args.model, device=args.device, dtype=args.dtype, hub=args.hub, revision=args.revision,
        api_base=args.api_base, api_key=args.api_key, api_model=args.api_model, api_timeout=args.api_timeout,
        process="here" if here else "model", wait=here, mmproj=args.mmproj, llama_server=args.llama_server,
        llama_server_args=shlex.split(args.llama_server_args or ""),
    )


def load_chat(args: argparse.Namespace):
    """``build_chat``, or exit with the error's message (no traceback)."""
    try:
        return build_chat(args)
    except MiniCPMVError as exc:
        raise SystemExit(f"error: {exc}") from None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.device == "mps":
        # Must be set before torch dispatches its first MPS op.
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")
    return args
