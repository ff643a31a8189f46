"""The MiniCPM-V 2.6+ demo: chat with text, several images or a video; few-shot examples; streaming and Stop."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import gradio as gr

from ..errors import InvalidInputError, MiniCPMVError
from .gradio_common import blocks, regenerate_handler, session_state, settings_kwargs, settings_panel, stop, zero_gpu
from .i18n import Labels, localized, request_language, text
from .session import ChatSession, user_message

ASSETS = Path(__file__).resolve().parents[2] / "assets"
MODEL_QUEUE = "model"  # every event that runs the model waits in this one line


def examples() -> list[dict]:
    """Examples drawn by the project (``scripts/make_assets.py``): no download at start."""
    found = [
        {"text": "What is the total on this receipt?", "files": [str(ASSETS / "receipt.png")]},
        {"text": "Which month had the highest sales?", "files": [str(ASSETS / "chart.png")]},
        {"text": "What is different between these two pictures?", "files": [str(ASSETS / "shapes_a.png"), str(ASSETS / "shapes_b.png")]},
        {"text": "Describe what happens in this video.", "files": [str(ASSETS / "clip.mp4")]},
    ]
    return [e for e in found if all(Path(f).is_file() for f in e["files"])]


def build_demo(chat, *, lang: Optional[str] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese; by default the page follows the browser's language."""
    limit = max(1, chat.backend.concurrency)
    label = Labels(lang)

    def add_turn(message: dict, session: ChatSession, request: gr.Request):
        message = message or {}
        files = [f if isinstance(f, str) else f.get("path") for f in message.get("files") or []]
        try:
            session.add_user_turn(message.get("text", ""), files)
        except MiniCPMVError as exc:
            gr.Warning(localized(exc, request_language(request, lang)))
            return gr.MultimodalTextbox(value=message), session.display, session
        return gr.MultimodalTextbox(value=None, interactive=False), session.display, session

    @zero_gpu
    def respond(session: ChatSession, decode_type, temperature, top_p, top_k, repetition_penalty, num_beams,
                max_new_tokens, system_prompt, request: gr.Request, progress=gr.Progress()):
        settings = settings_kwargs(locals(), exclude=("session", "progress", "request"))
        language = request_language(request, lang)

        def on_frames(done: int, total: int) -> None:
            progress((done, total), desc=text("decoding_video", language))

        for display in session.stream_answer(chat, settings, progress=on_frames, lang=language):
            yield display, session

    def clear(session: ChatSession):
        session.clear()
        return [], session, gr.MultimodalTextbox(value=None, interactive=True)

    def unlock():
        return gr.MultimodalTextbox(interactive=True)

    def add_example(image, user_text, assistant_text, session: ChatSession, request: gr.Request):
        language = request_language(request, lang)
        try:
            if not image:
                raise InvalidInputError(text("upload_first", language))
            session.add_answered_turn(user_text, [image], assistant_text)
        except MiniCPMVError as exc:
            gr.Warning(user_message(exc, language))
            return session.display, session, image, user_text, assistant_text
        return session.display, session, None, "", ""

    def add_question(image, question, session: ChatSession, request: gr.Request):
        language = request_language(request, lang)
        try:
            if not image:
                raise InvalidInputError(text("upload_first", language))
            session.add_user_turn(question, [image])
        except MiniCPMVError as exc:
            gr.Warning(localized(exc, language))
        return session.display, session

    def clear_few_shot(session: ChatSession):
        session.clear()
        return [], session

    with blocks("MiniCPM-V") as demo:
        gr.Markdown(label("heading_26"))
        gr.Markdown(f"`{chat.backend.describe()}`")
        panel = settings_panel(label)
        settings_inputs = panel.components
        with gr.Tab(label("tab_chat")):
            session = session_state()
            chatbot = gr.Chatbot(label=label("chat_label"), height=520, buttons=["copy"], feedback_options=None)
            box = gr.MultimodalTextbox(
                placeholder=label("input_placeholder"),
                file_types=["image", "video"],
                file_count="multiple",
                sources=["upload"],
                show_label=False,
                stop_btn=label("stop"),
            )
            with gr.Row():
                stop_button = gr.Button(label("stop"), variant="stop", elem_id="stop-button")
                regen_button = gr.Button(label("regenerate"), elem_id="regenerate-button")
                clear_button = gr.Button(label("clear"), elem_id="clear-button")
            gr.Examples(examples(), inputs=box, label=label("examples"))

            box.submit(add_turn, [box, session], [box, chatbot, session], queue=False, api_name="add_turn").then(
                respond, [session, *settings_inputs], [chatbot, session],
                api_name="respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
            ).then(unlock, None, box, api_visibility="private")
            stop_button.click(stop, session, None, queue=False, api_name="stop")
            box.stop(stop, session, None, queue=False, api_visibility="private")
            regen_button.click(regenerate_handler(lang), session, [chatbot, session], queue=False, api_name="regenerate").then(
                respond, [session, *settings_inputs], [chatbot, session],
                api_name="regenerate_respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
            )
            clear_button.click(clear, session, [chatbot, session, box], queue=False, api_name="clear")

        with gr.Tab(label("tab_few_shot")):
            fs_session = session_state()
            gr.Markdown(label("few_shot_help"))
            with gr.Row():
                with gr.Column():
                    ex_image = gr.Image(type="filepath", label=label("example_image"), sources=["upload"], height=200)
                    ex_user = gr.Textbox(label=label("example_user"))
                    ex_assistant = gr.Textbox(label=label("example_assistant"))
                    add_button = gr.Button(label("add_example"))
                with gr.Column():
                    test_image = gr.Image(type="filepath", label=label("test_image"), sources=["upload"], height=200)
                    question = gr.Textbox(label=label("test_question"))
                    ask_button = gr.Button(label("ask"), variant="primary")
            fs_chatbot = gr.Chatbot(label=label("chat_label"), height=420, feedback_options=None)
            with gr.Row():
                fs_stop = gr.Button(label("stop"), variant="stop")
                fs_clear = gr.Button(label("clear"))
            add_button.click(
                add_example, [ex_image, ex_user, ex_assistant, fs_session],
                [fs_chatbot, fs_session, ex_image, ex_user, ex_assistant], queue=False, api_name="add_example",
            )
            ask_button.click(add_question, [test_image, question, fs_session], [fs_chatbot, fs_session],
                             queue=False, api_name="few_shot_question").then(
                respond, [fs_session, *settings_inputs], [fs_chatbot, fs_session],
                api_name="few_shot_respond", concurrency_id=MODEL_QUEUE, concurrency_limit=limit,
            )
            fs_stop.click(stop, fs_session, None, queue=False, api_name="few_shot_stop")
            fs_clear.click(clear_few_shot, fs_session, [fs_chatbot, fs_session], queue=False, api_name="few_shot_clear")
    demo.launch_kwargs = label.launch_kwargs()
    return demo
