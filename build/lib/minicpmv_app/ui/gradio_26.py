"""The MiniCPM-V 2.6+ demo: chat with text, several images or a video; few-shot examples; streaming and Stop."""

from __future__ import annotations

import html

from pathlib import Path
from typing import Any, Optional

import gradio as gr

from ..compare import Contenders
from ..errors import InvalidInputError, MiniCPMVError
from ..media import kinds
from ..session import ChatSession
from .gradio_common import (
    UI_STEP, ChatSteps, blocks, chat_view, document_row, grounding_row, message_files, model_line, ocr_row, refusal, render,
    session_state, settings_panel,
    stop_button, without_discarded,
)
from .gradio_chats import ChatsPanel
from .gradio_compare import compare_tab
from .i18n import Labels, text

ASSETS = Path(__file__).resolve().parents[2] / "assets"
PICTURE_SOURCES: list[Any] = ["upload", "webcam", "clipboard"]


# (question key, files): the project's own pictures (``scripts/make_assets.py``), no download at start.
ASSET_EXAMPLES = (
    ("example_q_receipt", ["receipt.png"]),
    ("example_q_chart", ["chart.png"]),
    ("example_q_compare", ["shapes_a.png", "shapes_b.png"]),
    ("example_q_video", ["clip.mp4"]),
)
# What the trained tiny can answer (it names the colour and shape of one shape, or of one of two pictures), and in
# which languages it was trained to (tests/ui/test_gradio_26.py asks each one).
TINY_EXAMPLES = (
    ("example_q_colour", [("red", "square")], ("en", "zh")),
    ("example_q_shape", [("blue", "circle")], ("en",)),
    ("example_q_second", [("green", "triangle"), ("purple", "square")], ("en",)),
    ("example_q_video_colour", [("orange", "circle", "video")], ("en", "zh")),
)


def examples(chat=None, lang: str = "en") -> list[dict]:
    """The example messages in ``lang``: for the trained ``--model tiny``, questions it answers, about pictures
    drawn for it (once, in the app's cache); for a real model, the project's assets."""
    from ..tiny import TRAINED_TINY

    if chat is not None and getattr(chat, "folder", None) == TRAINED_TINY:
        return [{"text": text(key, lang), "files": [str(f) for f in tiny_example_files(shapes)]}
                for key, shapes, languages in TINY_EXAMPLES if lang in languages]
    found = [{"text": text(key, lang), "files": [str(ASSETS / f) for f in files]} for key, files in ASSET_EXAMPLES]
    return [e for e in found if all(Path(f).is_file() for f in e["files"])]


def tiny_example_files(shapes) -> list[Path]:
    import random

    from ..media.video import write_video
    from ..tiny import default_cache_dir
    from ..tiny_task import draw

    folder = default_cache_dir() / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for colour, shape, *video in shapes:
        path = folder / f"{colour}-{shape}{'.mp4' if video else '.png'}"
        if not path.is_file():
            # At the size the tiny was trained on (about 200 px; larger pictures are issue 25's open work).
            picture = draw(colour, shape, size=(200, 150), rng=random.Random(colour + shape))
            if video:
                write_video(path, [picture] * 20, fps=10, size=picture.size)
            else:
                picture.save(path)
        files.append(path)
    return files


def build_demo(chat, *, lang: Optional[str] = None, defaults: Optional[dict] = None,
               contenders: Optional[Contenders] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese (by default the page follows the browser); ``defaults`` are settings;
    ``contenders`` are the models the Compare tab offers (by default ``chat`` alone, with two settings)."""
    label = Labels(lang)
    with blocks("MiniCPM-V") as demo:
        gr.Markdown(label("heading_26"))
        model_line(demo, chat, lang)
        steps = ChatSteps(chat, lang, settings_panel(label, defaults, chat.knobs, server=chat.backend.is_server,
                                                  model_presets=chat.backend.preset_overrides))
        limit = max(1, chat.backend.concurrency)
        with gr.Tab(label("tab_chat")):
            chat_tab(demo, steps, label, limit)
        with gr.Tab(label("tab_few_shot")):
            few_shot_tab(steps, label, limit)
        with gr.Tab(label("tab_compare"), elem_id="compare-tab"):
            compare_tab(steps, label, contenders or Contenders(chat), limit)
    demo.launch_kwargs = label.launch_kwargs()
    return demo


def chat_tab(demo: gr.Blocks, steps: ChatSteps, label, limit: int) -> None:
    """Text, several images or one video per message (or a PDF's pages); Stop, Regenerate, Clear; past chats kept
    in the browser; export and import."""

    def add_turn(message: dict, pages: str, session: ChatSession, request: gr.Request):
        files = message_files(message)
        return steps.submit(session, (message or {}).get("text", ""), files, request, pages)

    def free_input(session: ChatSession):
        return gr.MultimodalTextbox(value=None, interactive=True), gr.Button(interactive=False), steps.zoom_choices(session)

    def clear(session: ChatSession):
        session.clear()
        return [], *free_input(session)

    def zoomed(path: str):
        return gr.MultimodalTextbox(value={"text": "", "files": [path]}, interactive=True)

    session = session_state()
    chatbot = chat_view(label, height=520, buttons=["copy"])
    box = gr.MultimodalTextbox(placeholder=label("input_placeholder"), file_types=kinds.UPLOAD_TYPES,
                               file_count="multiple", sources=["upload"], show_label=False, elem_id="chat-input")
    with gr.Row():
        stop_btn = stop_button(label, elem_id="stop-button")
        regen_btn = gr.Button(label("regenerate"), elem_id="regenerate-button")
        clear_btn = gr.Button(label("clear"), elem_id="clear-button")
    with gr.Accordion(label("camera"), open=False, elem_id="camera-panel"):
        # A photo taken here joins the message box's files (pasting a picture into the box works as well).
        camera = gr.Image(type="filepath", sources=["webcam"], label=label("camera"), height=240, elem_id="camera")
    # The message box shows a PDF or a video as a bare icon: their names are said under it.
    attached = gr.Markdown(elem_id="attached-files")
    box.change(attached_names, box, attached, queue=False, api_visibility="private")
    pages = document_row(label, box)
    locate_text, locate_btn, zoom_choice, zoom_btn = grounding_row(label)
    ocr_choice, ocr_btn = ocr_row(label, steps.chat.prompts)
    # A browser-following page shows both languages' examples (an example's text is data, not a label).
    for lang in ([steps.lang] if steps.lang else ["en", "zh"]):
        gr.Examples(examples(steps.chat, lang), inputs=box, label=text("examples", lang))
    chats = ChatsPanel(demo, steps, label, session, chatbot)

    then = dict(fn=free_input, inputs=session, outputs=[box, stop_btn, zoom_choice])
    camera.input(take_photo, [camera, box], [box, camera], queue=False, api_visibility="private")
    submitted = box.submit(add_turn, [box, pages, session], session, api_name="add_turn", **UI_STEP)
    # The box empties and locks once the turn is recorded; it opens again when the answer ends.
    submitted.success(lambda: gr.MultimodalTextbox(value=None, interactive=False), None, box, queue=False,
                      api_visibility="private")
    submitted.failure(without_discarded, box, box, queue=False, api_visibility="private")
    chats.remember_after(steps.answer_after(submitted, session, chatbot, stop_btn, api_name="respond", limit=limit,
                                            then=then))
    regenerated = regen_btn.click(steps.regenerate, session, session, api_name="regenerate", **UI_STEP)
    chats.remember_after(steps.answer_after(regenerated, session, chatbot, stop_btn, api_name="regenerate_respond",
                                            limit=limit, then=then))
    def locate(session: ChatSession, phrase: str, message: dict, request: gr.Request):
        return steps.locate(session, phrase, waiting_picture(message), request)

    located = locate_btn.click(locate, [session, locate_text, box], session, api_name="locate", **UI_STEP)
    located.success(lambda: gr.MultimodalTextbox(interactive=False), None, box, queue=False, api_visibility="private")
    chats.remember_after(steps.answer_after(located, session, chatbot, stop_btn, api_name="locate_respond",
                                            limit=limit, then=then))
    def recognize(session: ChatSession, prompt_text: str, message: dict, request: gr.Request):
        return steps.recognize(session, prompt_text, waiting_picture(message), request)

    recognized = ocr_btn.click(recognize, [session, ocr_choice, box], session, api_name="recognize", **UI_STEP)
    recognized.success(lambda: gr.MultimodalTextbox(value=None, interactive=False), None, box, queue=False,
                       api_visibility="private")
    chats.remember_after(steps.answer_after(recognized, session, chatbot, stop_btn, api_name="recognize_respond",
                                            limit=limit, then=then))
    crop = gr.State()  # the path of the latest crop: a refused Zoom changes no visible component
    zoom_btn.click(steps.crop, [session, zoom_choice], crop, api_name="zoom", **UI_STEP).success(
        zoomed, crop, box, queue=False, api_visibility="private")
    stop_btn.click(steps.stop, session, None, queue=False, api_name="stop")
    chats.forget_after(clear_btn.click(clear, session, [chatbot, box, stop_btn, zoom_choice], queue=False,
                                       api_name="clear"))


def waiting_picture(message) -> Optional[str]:
    """The latest picture waiting in the message box (an upload, or a Zoom crop): the one Locate looks in and OCR
    reads, else None (they take the latest in the conversation). A PDF or a video is not a picture: PDF pages go
    with the page range, in the message box."""
    pictures = [f for f in message_files(message) if kinds.is_picture(f)]
    return pictures[-1] if pictures else None


def attached_names(message) -> str:
    """The names of the PDFs and videos waiting in the message box (pictures show themselves)."""
    files = message_files(message)
    names = [Path(f).name for f in files if not kinds.is_picture(f)]
    return "📎 " + ", ".join(html.escape(name) for name in names) if names else ""


def take_photo(photo, message):
    """The photo joins the files waiting in the message box; the camera is ready for the next one."""
    message = message or {}
    files = [*(message.get("files") or []), photo] if photo else message.get("files") or []
    return {"text": message.get("text", ""), "files": files}, None


def few_shot_tab(steps: ChatSteps, label, limit: int) -> None:
    """Examples (image, question, the answer wanted) go first as earlier turns; then a question about a new image."""

    def add_example(image, user_text, assistant_text, session: ChatSession, request: gr.Request):
        try:
            if not image:
                raise InvalidInputError("Upload an image first.", key="upload_first")
            session.add_example(user_text, [image], assistant_text)
        except MiniCPMVError as exc:
            raise refusal(exc, steps.language(request)) from None
        return session

    def example_added(session: ChatSession, request: gr.Request):
        return render(session, steps.language(request)), None, "", ""

    def ask(image, question, session: ChatSession, request: gr.Request):
        if not image:
            raise refusal(InvalidInputError("Upload an image first.", key="upload_first"), steps.language(request))
        return steps.submit(session, question, [image], request)

    def clear(session: ChatSession):
        session.clear()
        return [], gr.Button(interactive=False)

    session = session_state()
    gr.Markdown(label("few_shot_help"))
    with gr.Row():
        with gr.Column():
            ex_image = gr.Image(type="filepath", label=label("example_image"), sources=PICTURE_SOURCES, height=200)
            ex_user = gr.Textbox(label=label("example_user"))
            ex_assistant = gr.Textbox(label=label("example_assistant"))
            add_btn = gr.Button(label("add_example"))
        with gr.Column():
            test_image = gr.Image(type="filepath", label=label("test_image"), sources=PICTURE_SOURCES, height=200)
            question = gr.Textbox(label=label("test_question"))
            ask_btn = gr.Button(label("ask"), variant="primary")
    chatbot = chat_view(label, height=420)
    with gr.Row():
        stop_btn = stop_button(label)
        clear_btn = gr.Button(label("clear"))

    added = add_btn.click(add_example, [ex_image, ex_user, ex_assistant, session], session, api_name="add_example",
                          **UI_STEP)
    added.success(example_added, session, [chatbot, ex_image, ex_user, ex_assistant], queue=False,
                  api_visibility="private")
    asked = ask_btn.click(ask, [test_image, question, session], session, api_name="few_shot_question", **UI_STEP)
    steps.answer_after(asked, session, chatbot, stop_btn, api_name="few_shot_respond", limit=limit)
    stop_btn.click(steps.stop, session, None, queue=False, api_name="few_shot_stop")
    clear_btn.click(clear, session, [chatbot, stop_btn], queue=False, api_name="few_shot_clear")
