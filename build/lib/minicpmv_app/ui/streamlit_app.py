"""The Streamlit demo: text, one image, several images or a video, multi-turn, streaming replies.

Run with ``streamlit run web_demo_streamlit.py -- --model tiny``. The model is loaded once per process
(``st.cache_resource``) and shared by every browser session; each session has its own ``ChatSession`` (the
toolkit-free state machine in ``minicpmv_app.session``) and its own private upload folder. This module only
renders the session's turns and its answer events.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
from functools import partial
from typing import Any, Iterator, Optional, Sequence

import streamlit as st

from .. import cli, transcript
from .. import settings as schema
from ..errors import MiniCPMVError
from ..grounding import GroundingFilter
from ..media import kinds
from ..media.documents import PROMPTS
from ..session import ChatSession, Failed, Progress, ReasoningDelta, State, TextDelta, Turn
from .i18n import LANGUAGES, language_of, localized, model_status, progress_words, text, user_message
from . import view
from .uploads import UploadFolder

MODES: dict[str, dict[str, Any]] = {
    "mode_text": dict(accept_file=False, file_type=None),
    "mode_single_image": dict(accept_file=True, file_type=kinds.file_types(kinds.IMAGE)),
    "mode_multi_image": dict(accept_file="multiple", file_type=kinds.file_types(kinds.IMAGE)),
    "mode_video": dict(accept_file=True, file_type=kinds.file_types(kinds.VIDEO)),
    "mode_document": dict(accept_file=True, file_type=kinds.file_types(kinds.PDF)),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="MiniCPM-V Streamlit demo (options go after `--`).")
    cli.model_arguments(parser, default_model="openbmb/MiniCPM-V-2_6")
    cli.language_argument(parser)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return args


@st.cache_resource(show_spinner=False)
def load_model(options: tuple):
    """One model per process, shared by every session; ``options`` is ``model_options(args)`` (hashable)."""
    return cli.build_chat(argparse.Namespace(**dict(options)))


def model_options(args: argparse.Namespace) -> tuple:
    return tuple(sorted(vars(args).items()))


def session_state() -> tuple[ChatSession, UploadFolder]:
    if "chat_session" not in st.session_state:
        st.session_state.chat_session = ChatSession()
        st.session_state.uploads = UploadFolder()
    return st.session_state.chat_session, st.session_state.uploads


def render_history(session: ChatSession, lang: str) -> None:
    for turn in session.turns:
        render_question(turn, lang)
        if turn.state != State.PENDING:
            with st.chat_message("assistant"):
                render_answer(turn, lang)


def shown_name(path: str) -> str:
    """The person's own name for an upload (files are saved under names of ours)."""
    uploads = st.session_state.get("uploads")
    return uploads.shown_name(path) if uploads is not None else os.path.basename(path)


def render_question(turn: Turn, lang: str) -> None:
    with st.chat_message("user"):
        for block in view.question_blocks(turn, lang, shown_name):
            if isinstance(block, view.File):
                render_file(block)
            else:
                st.markdown(block.text)


def render_file(block: view.File) -> None:
    try:
        if block.caption:
            st.caption(block.caption)
        elif block.kind is kinds.VIDEO:
            st.video(block.path)
        else:
            st.image(block.path, width=240)
    except Exception:  # a file that failed to decode still has its turn shown, just not its picture
        st.caption("📎 " + block.name)


def render_answer(turn: Turn, lang: str, *, streamed: bool = False) -> None:
    """The view's blocks of the answer (``view.answer_blocks``); ``streamed``: only what follows the text, which
    ``answer`` has just streamed into the page."""
    for block in view.answer_blocks(turn, lang):
        if streamed and not isinstance(block, view.AFTER_ANSWER):
            continue
        if isinstance(block, view.Thinking):
            with st.expander(text("thinking", lang), expanded=block.open, icon="💭"):
                st.markdown(block.text)
        elif isinstance(block, view.Failure):
            st.error(block.text)
        elif isinstance(block, view.Answer) and block.text:
            st.markdown(block.text, unsafe_allow_html=block.html)  # HTML is sanitised to table structure (answers.py)
        elif isinstance(block, (view.Mark, view.Unplaced)):
            st.caption(block.text)
        elif isinstance(block, view.RawAnswer):  # st.code has a Copy button
            with st.expander(text("raw_answer", lang), expanded=False):
                st.code(block.text, language="text")
        elif isinstance(block, view.Figure):
            st.image(block.image, caption=block.caption)


def answer(session: ChatSession, chat, settings: dict, lang: str) -> None:
    """Stream the pending turn's answer into the page: decoding progress, the reasoning in a Thinking block
    (closed once the answer starts), then the answer without grounding tags; a failure as an error."""
    bar: Any = None
    thinking: Any = None
    thought_slot: Any = None
    thought = ""
    tags = GroundingFilter()

    def pieces() -> Iterator[str]:
        nonlocal bar, thinking, thought_slot, thought
        for event in session.answer(chat, settings):
            if isinstance(event, Progress):
                what = progress_words(event, lang)
                bar = bar or st.progress(0.0, text=what)
                bar.progress(event.done / max(1, event.total), text=what)
            elif isinstance(event, ReasoningDelta):
                if thinking is None:
                    thinking = thinking_area.status(text("thinking", lang), expanded=True)
                    thought_slot = thinking.empty()
                thought += event.text
                thought_slot.markdown(thought.strip())
            elif isinstance(event, TextDelta):
                if thinking is not None:
                    thinking.update(state="complete", expanded=False)
                yield tags.feed(event.text)
            elif isinstance(event, Failed):
                st.error(user_message(event.error, lang))
        yield tags.flush()
        if thinking is not None:
            thinking.update(state="complete", expanded=False)

    with st.chat_message("assistant"):
        thinking_area = st.container()  # above the answer, whenever the reasoning starts
        st.write_stream(pieces())
        if bar is not None:
            bar.empty()
        if session.turns:  # why an answer is empty, stopped or cut off, here too, not only after the next rerun
            render_answer(session.turns[-1], lang, streamed=True)


def browser_language() -> str:
    locale = getattr(getattr(st, "context", None), "locale", None)
    return language_of(locale)


def setting_widget(setting: schema.Setting, lang: str, knobs: Optional[dict] = None, model_presets=None):
    """One schema setting in the sidebar (sampling only here, as upstream's Streamlit demo; knobs with the model's
    defaults)."""
    value = (knobs or {}).get(setting.name, setting.default_for(schema.SAMPLING, model_presets))
    help_ = text(setting.info, lang) if setting.info else None
    if setting.kind == "bool":
        return st.toggle(text(setting.label, lang), value=bool(value), help=help_, key=f"knob_{setting.name}")
    if setting.kind == "choice":
        return st.radio(text(setting.label, lang), list(setting.choices), index=list(setting.choices).index(value),
                        horizontal=True, help=help_, key=f"knob_{setting.name}")
    if setting.kind == "text":
        return st.text_area(text(setting.label, lang), value or "")
    cast = int if setting.kind == "int" else float
    return st.slider(text(setting.label, lang), cast(setting.minimum or 0), cast(setting.maximum or 0),
                     cast(value), cast(setting.step or 1))


def sidebar(default_lang: str) -> tuple[str, str]:
    with st.sidebar:
        codes = list(LANGUAGES)
        lang = st.selectbox("Language / 语言", codes, index=codes.index(default_lang), format_func=LANGUAGES.__getitem__,
                            key="lang") or default_lang
        mode = st.radio(text("mode", lang), list(MODES), format_func=lambda key: text(key, lang),
                        help=text("mode_help", lang)) or next(iter(MODES))
    return lang, mode


def settings_sidebar(lang: str, knobs: dict, model_presets=None) -> tuple[dict, bool]:
    """The model's own knobs first (with its defaults), then sampling settings (from the model's own values where
    its checkpoint sets them), then Clear."""
    with st.sidebar:
        settings = {s.name: setting_widget(s, lang, knobs) for s in schema.SCHEMA if s.knob and s.name in knobs}
        settings.update({s.name: setting_widget(s, lang, None, model_presets) for s in schema.SCHEMA
                         if schema.SAMPLING in s.modes and s.kind != "choice" and not s.knob})
        settings["decode_type"] = schema.SAMPLING
        settings["system_prompt"] = (settings.get("system_prompt") or "").strip() or None
        clear = st.button(text("clear", lang), use_container_width=True)
    return settings, clear


def document_sidebar(lang: str) -> tuple[str, str]:
    """Document mode: the page range, and a document prompt the person can edit (sent when the message has no
    text of its own)."""
    with st.sidebar:
        st.subheader(text("mode_document", lang))
        pages = st.text_input(text("pdf_pages", lang), placeholder=text("pdf_pages_placeholder", lang), key="pdf_pages")
        preset = st.selectbox(text("doc_presets", lang), PROMPTS, format_func=lambda k: text(f"preset_{k}", lang),
                              key="doc_preset")
        prompt = st.text_area(text("doc_prompt", lang), text(f"prompt_{preset}", lang), key=f"doc_prompt_{preset}_{lang}")
    return pages, prompt


def sharing_sidebar(session: ChatSession, uploads: UploadFolder, chat, lang: str) -> None:
    """Export (Markdown, HTML, JSON with a run card) and import. This demo keeps no memory of its own: it says so."""
    with st.sidebar:
        st.subheader(text("export", lang))
        st.caption(text("memory_none_streamlit", lang))
        if session.turns and not session.busy:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            for kind, (suffix, mime, write) in transcript.EXPORTS.items():
                # Written only when clicked (a callable): a rerun does not encode every picture again.
                st.download_button(text(f"export_{kind}", lang), partial(exported, write, session, chat),
                                   file_name=f"minicpmv-chat-{stamp}{suffix}", mime=mime, on_click="ignore",
                                   key=f"export_{kind}", use_container_width=True)
        round_ = st.session_state.get("import_round", 0)  # a new key empties the uploader after an import
        upload = st.file_uploader(text("import_json", lang), type=["json"], key=f"import_{round_}")
    if upload is None:
        return
    try:
        loaded = transcript.read(upload.getvalue())
        transcript.restore(session, loaded, lambda data, suffix: str(uploads.save(f"imported{suffix}", data)))
    except MiniCPMVError as exc:
        st.sidebar.error(localized(exc, lang))
        return
    st.session_state.import_round = round_ + 1
    st.toast(text("imported_skipped" if loaded.skipped else "imported", lang, count=len(loaded.turns),
                  skipped=loaded.skipped))
    st.rerun()


def exported(write, session: ChatSession, chat) -> str:
    return write(session, transcript.run_card(chat, session))


def grounding_sidebar(session: ChatSession, uploads: UploadFolder, lang: str) -> Optional[str]:
    """Locate (a phrase, asked with the grounding prompt about the latest picture) and Zoom (the chosen box,
    cropped, attached to the next message). Returns the phrase to locate, if asked."""
    with st.sidebar:
        st.subheader(text("locate_label", lang))
        phrase = st.text_input(text("locate_label", lang), placeholder=text("locate_placeholder", lang),
                               label_visibility="collapsed", key="locate_phrase")
        locate = st.button(text("locate_button", lang), use_container_width=True)
        regions = session.regions()
        if regions:
            choice = st.selectbox(text("zoom_label", lang), range(len(regions)),
                                  format_func=lambda n: f"{n + 1}: {regions[n].label or regions[n].kind}", key="zoom_choice")
            if st.button(text("zoom_button", lang), use_container_width=True):
                buffer = io.BytesIO()
                session.zoom(choice).save(buffer, format="PNG")
                st.session_state.zoom_crop = str(uploads.save("crop.png", buffer.getvalue()))
        if st.session_state.get("zoom_crop"):
            st.image(st.session_state.zoom_crop, caption=text("zoom_ready", lang), width=160)
    return phrase if locate else None


def model_line(chat, lang: str) -> None:
    """What runs the model; while its model process loads, how far it is (redrawn every second until it is
    ready, then the whole page once, so the settings follow the loaded model); if it failed, why."""
    state = chat.status().state
    if state in ("ready", "failed"):
        (st.caption if state == "ready" else st.error)(model_status(chat, lang))
        return

    @st.fragment(run_every=1.0)
    def loading() -> None:
        if chat.status().state in ("ready", "failed"):
            st.rerun()
        st.info(model_status(chat, lang))

    loading()


def main() -> None:
    args = parse_args()
    st.set_page_config(page_title="MiniCPM-V", page_icon="🖼️")
    lang, mode = sidebar(args.lang or browser_language())
    st.title(text("title_streamlit", lang))
    with st.spinner(text("loading_model", lang, model=args.model)):
        try:
            chat = load_model(model_options(args))
        except Exception as exc:  # a model that cannot load is one message, not a traceback
            st.error(localized(exc, lang))
            st.stop()
    model_line(chat, lang)
    session, uploads = session_state()
    settings, clear = settings_sidebar(lang, chat.knobs, chat.backend.preset_overrides)
    if clear:
        session.clear()
        uploads.clear()
        st.session_state.zoom_crop = None
    locate = grounding_sidebar(session, uploads, lang)
    pages, document_prompt = document_sidebar(lang) if mode == "mode_document" else ("", "")
    render_history(session, lang)
    converse(session, uploads, chat, settings, lang, mode, locate, pages, document_prompt)
    # Last, so its download buttons see the answer just written (the sidebar's earlier parts were drawn before it).
    sharing_sidebar(session, uploads, chat, lang)


def converse(session: ChatSession, uploads: UploadFolder, chat, settings: dict, lang: str, mode: str,
             locate: Optional[str], pages: str, document_prompt: str) -> None:
    """The message box, and the answer to what was sent (or to Locate)."""
    options = MODES[mode]
    placeholder = text("chat_placeholder_media" if options["accept_file"] else "chat_placeholder_text", lang)
    submitted = st.chat_input(placeholder, key=f"input_{mode}", **{k: v for k, v in options.items() if v is not None})
    if locate is not None:
        try:
            turn = session.locate(locate)
        except Exception as exc:
            st.error(localized(exc, lang))
            return
    elif not submitted:
        return
    else:
        if isinstance(submitted, str):
            question, files = submitted, list[str]()
        else:
            question = submitted.text
            files = [str(uploads.save(f.name, f.getvalue())) for f in submitted.files]
            if not question.strip() and files and mode == "mode_document":
                question = document_prompt
        if st.session_state.get("zoom_crop") and options["accept_file"]:  # a Zoom crop goes with the next message
            files = [st.session_state.zoom_crop, *files]
            st.session_state.zoom_crop = None
        try:
            turn = session.submit(question, files, pages=pages)
        except Exception as exc:
            for path in files:  # a refused upload is not kept (a Zoom crop is ours, and goes too)
                uploads.discard(path)
            st.error(localized(exc, lang))
            return
    render_question(turn, lang)
    answer(session, chat, settings, lang)
    if turn.regions:  # the sidebar was drawn before the answer: draw it again, now with the answer's boxes to zoom into
        st.rerun()
