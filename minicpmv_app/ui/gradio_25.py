"""The MiniCPM-Llama3-V 2.5 demo: upload one image, then chat about it, with upstream's decoding sliders."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from ..errors import MiniCPMVError
from .gradio_common import blocks, regenerate_handler, session_state, settings_kwargs, settings_panel, stop, zero_gpu
from .i18n import Labels, localized, request_language, text
from .session import ChatSession

MODEL_QUEUE = "model"


def build_demo(chat, *, lang: Optional[str] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese; by default the page follows the browser's language."""
    limit = max(1, chat.backend.concurrency)
    label = Labels(lang)

    def new_image(image, session: ChatSession, request: gr.Request):
        # One image per conversation (as upstream): a new upload, or removing it, starts over.
        session.clear()
        if image:
            gr.Info(text("new_image_new_chat", request_language(request, lang)))
        return [], session

    def add_turn(question: str, image, session: ChatSession, request: gr.Request):
        files = [image] if image and not session.messages else []
        try:
            session.add_user_turn(question, files)
        except MiniCPMVError as exc:
            gr.Warning(localized(exc, request_language(request, lang)))
            return question, session.display, session
        return "", session.display, session

    @zero_gpu
    def respond(session: ChatSession, decode_type, temperature, top_p, top_k, repetition_penalty, num_beams,
                max_new_tokens, system_prompt, request: gr.Request):
        settings = settings_kwargs(locals(), exclude=("session", "request"))
        for display in session.stream_answer(chat, settings, lang=request_language(request, lang)):
            yield display, session

    def clear(session: ChatSession):
        session.clear()
        return [], session, ""

    with blocks("MiniCPM-Llama3-V 2.5") as demo:
        gr.Markdown(label("heading_25"))
        gr.Markdown(f"`{chat.backend.describe()}`")
        session = session_state()
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = gr.Image(type="filepath", label=label("image"), sources=["upload"], height=300)
                panel = settings_panel(label, open=True)
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label=label("chat_label"), height=520, buttons=["copy"], feedback_options=None)
                question = gr.Textbox(placeholder=label("input_placeholder"), show_label=False, submit_btn=label("send"))
                with gr.Row():
                    stop_button = gr.Button(label("stop"), variant="stop", elem_id="stop-button")
                    regen_button = gr.Button(label("regenerate"), elem_id="regenerate-button")
                    clear_button = gr.Button(label("clear"), elem_id="clear-button")

        image.change(new_image, [image, session], [chatbot, session], queue=False, api_name="new_image")
        question.submit(add_turn, [question, image, session], [question, chatbot, session], queue=False, api_name="add_turn").then(
            respond, [session, *panel.components], [chatbot, session],
            api_name="respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
        )
        regen_button.click(regenerate_handler(lang), session, [chatbot, session], queue=False, api_name="regenerate").then(
            respond, [session, *panel.components], [chatbot, session],
            api_name="regenerate_respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
        )
        stop_button.click(stop, session, None, queue=False, api_name="stop")
        clear_button.click(clear, session, [chatbot, session, question], queue=False, api_name="clear")
    demo.launch_kwargs = label.launch_kwargs()
    return demo
