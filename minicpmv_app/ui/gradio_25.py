"""The MiniCPM-Llama3-V 2.5 demo: upload one image, then chat about it, with upstream's decoding sliders."""

from __future__ import annotations

import gradio as gr

from ..errors import MiniCPMVError
from .gradio_common import settings_kwargs, settings_panel, zero_gpu
from .session import ChatSession
from .strings import text

MODEL_QUEUE = "model"


def build_demo(chat, *, title: str | None = None) -> gr.Blocks:
    limit = max(1, chat.backend.concurrency)
    title = title or text("title_25")

    def new_image(image, session: ChatSession):
        # One image per conversation (as upstream): a new upload, or removing it, starts over.
        session.clear()
        if image:
            gr.Info(text("new_image_new_chat"))
        return [], session

    def add_turn(question: str, image, session: ChatSession):
        files = [image] if image and not session.messages else []
        try:
            session.add_user_turn(question, files)
        except MiniCPMVError as exc:
            gr.Warning(str(exc))
            return question, session.display, session
        return "", session.display, session

    @zero_gpu
    def respond(session: ChatSession, decode_type, temperature, top_p, top_k, repetition_penalty, num_beams,
                max_new_tokens, system_prompt):
        settings = settings_kwargs(locals(), exclude=("session",))
        for display in session.stream_answer(chat, settings):
            yield display, session

    def regenerate(session: ChatSession):
        if not session.prepare_regenerate():
            gr.Warning(text("nothing_to_regenerate"))
        return session.display, session

    def stop(session: ChatSession):
        session.request_stop()

    def clear(session: ChatSession):
        session.clear()
        return [], session, ""

    with gr.Blocks(title=title) as demo:
        gr.Markdown(f"## {title}\n{text('model_info', model=chat.backend.describe())}")
        session = gr.State(ChatSession())
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = gr.Image(type="filepath", label=text("image"), sources=["upload"], height=300)
                panel = settings_panel(open=True)
            with gr.Column(scale=2):
                chatbot = gr.Chatbot(label=text("chat_label"), height=520, buttons=["copy"], feedback_options=None)
                question = gr.Textbox(placeholder=text("input_placeholder"), show_label=False, submit_btn=text("send"))
                with gr.Row():
                    stop_button = gr.Button(text("stop"), variant="stop", elem_id="stop-button")
                    regen_button = gr.Button(text("regenerate"), elem_id="regenerate-button")
                    clear_button = gr.Button(text("clear"), elem_id="clear-button")

        image.change(new_image, [image, session], [chatbot, session], queue=False, api_name="new_image")
        question.submit(add_turn, [question, image, session], [question, chatbot, session], queue=False, api_name="add_turn").then(
            respond, [session, *panel.components], [chatbot, session],
            api_name="respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
        )
        regen_button.click(regenerate, session, [chatbot, session], queue=False, api_name="regenerate").then(
            respond, [session, *panel.components], [chatbot, session],
            api_name="regenerate_respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
        )
        stop_button.click(stop, session, None, queue=False, api_name="stop")
        clear_button.click(clear, session, [chatbot, session, question], queue=False, api_name="clear")
    return demo
