"""The MiniCPM-V 2.6+ demo: chat with text, several images or a video; few-shot examples; streaming and Stop."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import gradio as gr

from ..errors import InvalidInputError, MiniCPMVError
from ..session import ChatSession
from .gradio_common import (
    MODEL_QUEUE, UI_STEP, blocks, refusal, render, session_state, settings_panel, stop_button, stream_answer, zero_gpu,
)
from .i18n import Labels, request_language

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def examples() -> list[dict]:
    """Examples drawn by the project (``scripts/make_assets.py``): no download at start."""
    found = [
        {"text": "What is the total on this receipt?", "files": [str(ASSETS / "receipt.png")]},
        {"text": "Which month had the highest sales?", "files": [str(ASSETS / "chart.png")]},
        {"text": "What is different between these two pictures?", "files": [str(ASSETS / "shapes_a.png"), str(ASSETS / "shapes_b.png")]},
        {"text": "Describe what happens in this video.", "files": [str(ASSETS / "clip.mp4")]},
    ]
    return [e for e in found if all(Path(f).is_file() for f in e["files"])]


def build_demo(chat, *, lang: Optional[str] = None, defaults: Optional[dict] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese (by default the page follows the browser); ``defaults`` are settings."""
    limit = max(1, chat.backend.concurrency)
    label = Labels(lang)

    # -- event functions: each takes and returns exactly what it names ------------------------------
    def add_turn(message: dict, session: ChatSession, request: gr.Request):
        files = [f if isinstance(f, str) else f.get("path") for f in (message or {}).get("files") or []]
        try:
            session.submit((message or {}).get("text", ""), files)
        except MiniCPMVError as exc:
            raise refusal(exc, request_language(request, lang)) from None
        return session

    def regenerate(session: ChatSession, request: gr.Request):
        try:
            session.regenerate()
        except MiniCPMVError as exc:
            raise refusal(exc, request_language(request, lang)) from None
        return session

    def busy(session: ChatSession, request: gr.Request):
        return gr.MultimodalTextbox(value=None, interactive=False), render(session, request_language(request, lang)), \
            gr.Button(interactive=True)

    @zero_gpu
    def respond(session: ChatSession, request: gr.Request, progress=gr.Progress(), *values):
        yield from stream_answer(chat, session, panel.read(values), request_language(request, lang), progress)

    def stop(session: ChatSession) -> None:
        session.stop()

    def idle():
        return gr.MultimodalTextbox(interactive=True), gr.Button(interactive=False)

    def clear(session: ChatSession):
        session.clear()
        return [], gr.MultimodalTextbox(value=None, interactive=True), gr.Button(interactive=False)

    def add_example(image, user_text, assistant_text, session: ChatSession, request: gr.Request):
        try:
            if not image:
                raise InvalidInputError("Upload an image first.", key="upload_first")
            session.add_example(user_text, [image], assistant_text)
        except MiniCPMVError as exc:
            raise refusal(exc, request_language(request, lang)) from None
        return session

    def add_question(image, question, session: ChatSession, request: gr.Request):
        try:
            if not image:
                raise InvalidInputError("Upload an image first.", key="upload_first")
            session.submit(question, [image])
        except MiniCPMVError as exc:
            raise refusal(exc, request_language(request, lang)) from None
        return session

    def few_shot_shown(session: ChatSession, request: gr.Request):
        return render(session, request_language(request, lang)), None, "", ""

    def few_shot_busy(session: ChatSession, request: gr.Request):
        return render(session, request_language(request, lang)), gr.Button(interactive=True)

    def clear_few_shot(session: ChatSession):
        session.clear()
        return [], gr.Button(interactive=False)

    # -- layout -------------------------------------------------------------------------------------
    with blocks("MiniCPM-V") as demo:
        gr.Markdown(label("heading_26"))
        gr.Markdown(f"`{chat.backend.describe()}`")
        panel = settings_panel(label, defaults)
        with gr.Tab(label("tab_chat")):
            session = session_state()
            chatbot = gr.Chatbot(label=label("chat_label"), height=520, buttons=["copy"], feedback_options=None)
            box = gr.MultimodalTextbox(placeholder=label("input_placeholder"), file_types=["image", "video"],
                                       file_count="multiple", sources=["upload"], show_label=False, elem_id="chat-input")
            with gr.Row():
                stop_btn = stop_button(label, elem_id="stop-button")
                regen_btn = gr.Button(label("regenerate"), elem_id="regenerate-button")
                clear_btn = gr.Button(label("clear"), elem_id="clear-button")
            gr.Examples(examples(), inputs=box, label=label("examples"))
        with gr.Tab(label("tab_few_shot")):
            fs_session = session_state()
            gr.Markdown(label("few_shot_help"))
            with gr.Row():
                with gr.Column():
                    ex_image = gr.Image(type="filepath", label=label("example_image"), sources=["upload"], height=200)
                    ex_user = gr.Textbox(label=label("example_user"))
                    ex_assistant = gr.Textbox(label=label("example_assistant"))
                    add_btn = gr.Button(label("add_example"))
                with gr.Column():
                    test_image = gr.Image(type="filepath", label=label("test_image"), sources=["upload"], height=200)
                    question = gr.Textbox(label=label("test_question"))
                    ask_btn = gr.Button(label("ask"), variant="primary")
            fs_chatbot = gr.Chatbot(label=label("chat_label"), height=420, feedback_options=None)
            with gr.Row():
                fs_stop = stop_button(label)
                fs_clear = gr.Button(label("clear"))

        # -- events: a step that may refuse, then (on success) the answer, then the input is free again --
        # A refusing step's only output is the session (no status badge on what the person sees); then the page.
        answer = dict(concurrency_id=MODEL_QUEUE, concurrency_limit=limit)
        show = dict(fn=busy, inputs=session, outputs=[box, chatbot, stop_btn], queue=False, api_visibility="private")
        box.submit(add_turn, [box, session], session, api_name="add_turn", **UI_STEP).success(**show).success(
            respond, [session, *panel.components], chatbot, api_name="respond", **answer,
        ).then(idle, None, [box, stop_btn], api_visibility="private")
        regen_btn.click(regenerate, session, session, api_name="regenerate", **UI_STEP).success(**show).success(
            respond, [session, *panel.components], chatbot, api_name="regenerate_respond", **answer,
        ).then(idle, None, [box, stop_btn], api_visibility="private")
        stop_btn.click(stop, session, None, queue=False, api_name="stop")
        clear_btn.click(clear, session, [chatbot, box, stop_btn], queue=False, api_name="clear")

        add_btn.click(add_example, [ex_image, ex_user, ex_assistant, fs_session], fs_session, api_name="add_example",
                      **UI_STEP).success(few_shot_shown, fs_session, [fs_chatbot, ex_image, ex_user, ex_assistant],
                                         queue=False, api_visibility="private")
        ask_btn.click(add_question, [test_image, question, fs_session], fs_session, api_name="few_shot_question",
                      **UI_STEP).success(
            few_shot_busy, fs_session, [fs_chatbot, fs_stop], queue=False, api_visibility="private",
        ).success(
            respond, [fs_session, *panel.components], fs_chatbot, api_name="few_shot_respond", **answer,
        ).then(lambda: gr.Button(interactive=False), None, fs_stop, api_visibility="private")
        fs_stop.click(stop, fs_session, None, queue=False, api_name="few_shot_stop")
        fs_clear.click(clear_few_shot, fs_session, [fs_chatbot, fs_stop], queue=False, api_name="few_shot_clear")
    demo.launch_kwargs = label.launch_kwargs()
    return demo
