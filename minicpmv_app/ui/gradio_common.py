"""Pieces both Gradio demos share: the settings panel, launching, ZeroGPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from ..presets import BEAM_SEARCH, PRESETS, SAMPLING

log = logging.getLogger(__name__)

# Uploads in Gradio's cache are deleted an hour after upload (checked every 30 minutes).
UPLOAD_CACHE = (1800, 3600)
# A session untouched for this long is dropped with its pictures (a closed tab is dropped at once).
SESSION_TTL_S = 3 * 3600

SETTING_NAMES = ("decode_type", "temperature", "top_p", "top_k", "repetition_penalty", "num_beams", "max_new_tokens", "system_prompt")


@dataclass
class SettingsPanel:
    components: list  # in SETTING_NAMES order: event functions take them as parameters of those names


def settings_panel(label, max_new_tokens: int = 1024, *, open: bool = False) -> SettingsPanel:
    """``label`` is the UI's ``i18n.Labels``."""
    sampling, beam = PRESETS[SAMPLING], PRESETS[BEAM_SEARCH]
    with gr.Accordion(label("settings"), open=open):
        decode = gr.Radio([(label("decode_sampling"), SAMPLING), (label("decode_beam"), BEAM_SEARCH)], value=SAMPLING,
                          label=label("decode_type"), info=label("decode_info"))
        with gr.Row():
            temperature = gr.Slider(0.0, 2.0, value=sampling["temperature"], step=0.05, label=label("temperature"))
            top_p = gr.Slider(0.0, 1.0, value=sampling["top_p"], step=0.05, label=label("top_p"))
            top_k = gr.Slider(0, 200, value=sampling["top_k"], step=1, label=label("top_k"))
        with gr.Row():
            repetition = gr.Slider(1.0, 3.0, value=sampling["repetition_penalty"], step=0.01, label=label("repetition_penalty"))
            beams = gr.Slider(1, 8, value=beam["num_beams"], step=1, label=label("num_beams"), interactive=False)
            budget = gr.Slider(1, 4096, value=max_new_tokens, step=1, label=label("max_new_tokens"))
        system_prompt = gr.Textbox("", label=label("system_prompt"), lines=2)

    def on_decode_change(mode: str):
        # Each mode brings its own preset values; only the sliders that mode uses stay editable.
        is_sampling = mode == SAMPLING
        return (
            gr.Slider(interactive=is_sampling),
            gr.Slider(interactive=is_sampling),
            gr.Slider(interactive=is_sampling),
            gr.Slider(value=PRESETS[mode]["repetition_penalty"]),
            gr.Slider(interactive=not is_sampling),
        )

    decode.change(on_decode_change, decode, [temperature, top_p, top_k, repetition, beams], queue=False, api_visibility="private")
    return SettingsPanel([decode, temperature, top_p, top_k, repetition, beams, budget, system_prompt])


def settings_kwargs(values: dict, exclude=()) -> dict:
    """The settings panel's values as ``MiniCPMVChat.settings`` keywords."""
    kwargs = {k: v for k, v in values.items() if k in SETTING_NAMES and k not in exclude}
    kwargs["system_prompt"] = (kwargs.get("system_prompt") or "").strip() or None
    return kwargs


def stop(session) -> None:
    session.request_stop()


def regenerate_handler(lang):
    """Regenerate: the last turn becomes pending again (its answer is taken back), or a warning."""
    from .i18n import request_language, text

    def regenerate(session, request: gr.Request):
        if not session.prepare_regenerate():
            gr.Warning(text("nothing_to_regenerate", request_language(request, lang)))
        return session.display, session

    return regenerate


def blocks(title: str) -> gr.Blocks:
    """The app's Blocks: no telemetry calls, uploads cleaned up."""
    return gr.Blocks(title=title, analytics_enabled=False, delete_cache=UPLOAD_CACHE)


def session_state() -> gr.State:
    """Per-browser-session ``ChatSession``; cleared when Gradio drops the session (tab closed)."""
    from .session import ChatSession

    return gr.State(ChatSession(), time_to_live=SESSION_TTL_S, delete_callback=ChatSession.clear)


def launch(demo: gr.Blocks, args, *, concurrency: int) -> None:
    from ..cli import parse_auth

    demo.queue(default_concurrency_limit=concurrency)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=parse_auth(args.auth),
        max_file_size=args.max_file_size,
        state_session_capacity=args.max_sessions,
        show_error=False,
        **getattr(demo, "launch_kwargs", {}),
    )


def run(build_demo, *, default_model: str, default_port: int, description: str, argv=None) -> None:
    """What a ``web_demo_*.py`` script does: parse options, load the model, build the UI, serve it."""
    import argparse

    from .. import cli

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.model_arguments(parser, default_model=default_model)
    cli.server_arguments(parser, default_port=default_port)
    args = cli.parse(parser, argv)
    cli.setup_logging()
    chat = cli.load_chat(args)
    launch(build_demo(chat, lang=args.lang), args, concurrency=chat.backend.concurrency)


def zero_gpu(function):
    """On a Hugging Face ZeroGPU Space (the ``spaces`` package is present) the GPU is attached per call."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(function)
