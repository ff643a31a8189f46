"""The MiniCPM-Llama3-V 2.5 demo: upload one image, then chat about it, with upstream's decoding sliders."""

from __future__ import annotations

from typing import Optional

import gradio as gr

from ..errors import InvalidInputError, MiniCPMVError
from ..media import kinds
from ..media.documents import check_pdf
from ..session import ChatSession
from .gradio_common import (
    UI_STEP, ChatSteps, blocks, chat_view, discard_unusable, info, document_row, grounding_row, model_line, refusal,
    session_state, settings_panel,
    stop_button,
)
from .gradio_chats import ChatsPanel
from .i18n import Labels, text


def build_demo(chat, *, lang: Optional[str] = None, defaults: Optional[dict] = None) -> gr.Blocks:
    """``lang`` forces English or Chinese (by default the page follows the browser); ``defaults`` are settings."""
    label = Labels(lang)
    with blocks("MiniCPM-Llama3-V 2.5") as demo:
        gr.Markdown(label("heading_25"))
        model_line(demo, chat, lang)
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                image = gr.Image(type="filepath", label=label("image_upload"), sources=["upload", "webcam", "clipboard"],
                                 height=300, elem_id="image-input")
                document = gr.File(label=label("pdf_upload_25"), file_types=[kinds.PDF.upload_type], type="filepath",
                                   elem_id="pdf-input")
                steps = ChatSteps(chat, lang, settings_panel(label, defaults, chat.knobs, open=True,
                                                          server=chat.backend.is_server,
                                                          model_presets=chat.backend.preset_overrides))
            with gr.Column(scale=2):
                one_image_chat(demo, steps, label, image, document, max(1, chat.backend.concurrency))
    demo.launch_kwargs = label.launch_kwargs()
    return demo


def one_image_chat(demo: gr.Blocks, steps: ChatSteps, label, image: gr.Image, document: gr.File, limit: int) -> None:
    """One image per conversation (as upstream): a new upload, or removing it, starts over, and the page says so.
    A PDF stands in for the image: one page of it (the page range) is the conversation's picture."""

    def new_image(picture, session: ChatSession, request: gr.Request):
        if picture and session.turns and session.turns[0].files == [picture]:
            # The question about this very picture was sent before this event ran: it is not a new picture.
            return gr.update(), gr.update()
        had_turns = bool(session.turns)
        session.clear()
        if picture and had_turns:
            info(text("new_image_new_chat", steps.language(request)), steps.language(request))
        return [], gr.Button(interactive=False)

    def add_turn(question: str, picture, pdf, pages: str, session: ChatSession, request: gr.Request):
        source = pdf or picture
        if pdf and session.turns and (pages or "").strip() != (session.turns[0].pages or "").strip():
            # One picture per conversation: another page is another picture. Never answer the old page silently.
            try:
                check_pdf(pdf, pages)  # a range outside the document gets its own message
                raise InvalidInputError(
                    f"This model keeps one page per conversation (page {session.turns[0].pages or 1}). To ask about "
                    f"page {pages}, press Clear, then send again.", key="pdf_page_change",
                    old=session.turns[0].pages or "1", new=(pages or "").strip() or "1")
            except MiniCPMVError as exc:
                raise refusal(exc, steps.language(request)) from None
        if pdf and not session.turns:
            try:
                if len(check_pdf(pdf, pages)) > 1:
                    raise InvalidInputError("This model reads one page at a time: choose one page, e.g. 2.",
                                            key="pdf_one_page")
            except MiniCPMVError as exc:
                discard_unusable([pdf], exc)
                raise refusal(exc, steps.language(request)) from None
        return steps.submit(session, question, [source] if source and not session.turns else [], request, pages)

    def clear(session: ChatSession):
        session.clear()
        return [], "", gr.Button(interactive=False), steps.zoom_choices(session)

    def answered(session: ChatSession):
        return gr.Button(interactive=False), steps.zoom_choices(session)

    def locate(session: ChatSession, phrase: str, picture, request: gr.Request):
        # One image per conversation: the picture goes with the first question only.
        return steps.locate(session, phrase, picture, request, resend=False)

    session = session_state()
    chatbot = chat_view(label, height=520, buttons=["copy"])
    question = gr.Textbox(placeholder=label("input_placeholder_25"), show_label=False, submit_btn=label("send"),
                          elem_id="chat-input")
    with gr.Row():
        stop_btn = stop_button(label, elem_id="stop-button")
        regen_btn = gr.Button(label("regenerate"), elem_id="regenerate-button")
        clear_btn = gr.Button(label("clear"), elem_id="clear-button")
    pages = document_row(label, question)
    locate_text, locate_btn, zoom_choice, zoom_btn = grounding_row(label)
    chats = ChatsPanel(demo, steps, label, session, chatbot)
    then = dict(fn=answered, inputs=session, outputs=[stop_btn, zoom_choice])

    # A new picture starts a new chat: the one before stays in the browser's memory under its own name. The
    # picture and the PDF stand for each other: setting one empties the other, so the chat is about what is shown.
    for source, other, api_name in ((image, document, "new_image"), (document, image, "new_document")):
        source.change(new_image, [source, session], [chatbot, stop_btn], api_name=api_name, **UI_STEP).then(
            lambda value, shown: (None, None if value and shown else gr.update()), [source, other],
            [chats.chat_id, other], queue=False, api_visibility="private")
    submitted = question.submit(add_turn, [question, image, document, pages, session], session, api_name="add_turn",
                                **UI_STEP)
    submitted.success(lambda: "", None, question, queue=False, api_visibility="private")
    chats.remember_after(steps.answer_after(submitted, session, chatbot, stop_btn, api_name="respond", limit=limit,
                                            then=then))
    regenerated = regen_btn.click(steps.regenerate, session, session, api_name="regenerate", **UI_STEP)
    chats.remember_after(steps.answer_after(regenerated, session, chatbot, stop_btn, api_name="regenerate_respond",
                                            limit=limit, then=then))
    located = locate_btn.click(locate, [session, locate_text, image], session, api_name="locate", **UI_STEP)
    chats.remember_after(steps.answer_after(located, session, chatbot, stop_btn, api_name="locate_respond",
                                            limit=limit, then=then))
    # A crop is a new picture: as any new upload, it starts a new conversation about it.
    crop = gr.State()
    zoom_btn.click(steps.crop, [session, zoom_choice], crop, api_name="zoom", **UI_STEP).success(
        lambda path: path, crop, image, queue=False, api_visibility="private")
    stop_btn.click(steps.stop, session, None, queue=False, api_name="stop")
    chats.forget_after(clear_btn.click(clear, session, [chatbot, question, stop_btn, zoom_choice], queue=False,
                                       api_name="clear"))
