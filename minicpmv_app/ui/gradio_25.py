"""The MiniCPM-Llama3-V 2.5 demo: upload one image, then chat about it, with upstream's decoding sliders."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from ..errors import MiniCPMVError
from ..session import ChatSession
from .gradio_common import (
    MODEL_QUEUE, UI_STEP, blocks, refusal, render, session_state, settings_panel, stop_button, stream_answer, zero_gpu,
)
from .i18n import Labels, request_language, text


def build_demo(chat, *, lang: Optional[str] = None, defaults: Optional[dict] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese (by default the page follows the browser); ``defaults`` are settings."""
    limit = max(1, chat.backend.concurrency)
    label = Labels(lang)

    def new_image(image, session: ChatSession, request: gr.Request):
        # One image per conversation (as upstream): a new upload, or removing it, starts over, and says so.
        had_turns = bool(session.turns)
        session.clear()
        if image and had_turns:
            gr.Info(text("new_image_new_chat", request_language(request, lang)), title=text("notice_title", request_language(request, lang)))
        return [], gr.Button(interactive=False)

    def add_turn(question: str, image, session: ChatSession, request: gr.Request):
        try:
            session.submit(question, [image] if image and not session.turns else [])
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
        return "", render(session, request_language(request, lang)), gr.Button(interactive=True)

    @zero_gpu
    def respond(session: ChatSession, request: gr.Request, *values):
        yield from stream_answer(chat, session, panel.read(values), request_language(request, lang))

    def stop(session: ChatSession) -> None:
        session.stop()

    def clear(session: ChatSession):
        session.clear()
        return [], "", gr.Button(interactive=False)

    with blocks("MiniCPM-Llama3-V 2.5") as demo:
        gr.Markdown(label("heading_25"))
        gr.Markdown(f"`{chat.backend.describe()}`")
        session = session_state()
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = gr.Image(type="filepath", label=label("image_upload"), sources=["upload"], height=300)
                panel = settings_panel(label, defaults, open=True)
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label=label("chat_label"), height=520, buttons=["copy"], feedback_options=None)
                question = gr.Textbox(placeholder=label("input_placeholder_25"), show_label=False, submit_btn=label("send"),
                                      elem_id="chat-input")
                with gr.Row():
                    stop_btn = stop_button(label, elem_id="stop-button")
                    regen_btn = gr.Button(label("regenerate"), elem_id="regenerate-button")
                    clear_btn = gr.Button(label("clear"), elem_id="clear-button")

        # A refusing step's only output is the session (no status badge on what the person sees); then the page.
        answer = dict(concurrency_id=MODEL_QUEUE, concurrency_limit=limit)
        show = dict(fn=busy, inputs=session, outputs=[question, chatbot, stop_btn], queue=False, api_visibility="private")
        idle = (lambda: gr.Button(interactive=False), None, stop_btn)
        image.change(new_image, [image, session], [chatbot, stop_btn], api_name="new_image", **UI_STEP)
        question.submit(add_turn, [question, image, session], session, api_name="add_turn", **UI_STEP).success(
            **show).success(respond, [session, *panel.components], chatbot, api_name="respond", **answer).then(
            *idle, api_visibility="private")
        regen_btn.click(regenerate, session, session, api_name="regenerate", **UI_STEP).success(**show).success(
            respond, [session, *panel.components], chatbot, api_name="regenerate_respond", **answer,
        ).then(*idle, api_visibility="private")
        stop_btn.click(stop, session, None, queue=False, api_name="stop")
        clear_btn.click(clear, session, [chatbot, question, stop_btn], queue=False, api_name="clear")
    demo.launch_kwargs = label.launch_kwargs()
    return demo
