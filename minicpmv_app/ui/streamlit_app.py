"""The Streamlit demo: text, one image, several images or a video, multi-turn, streaming replies.

Run with ``streamlit run web_demo_streamlit.py -- --model tiny``. The model is loaded once per process
(``st.cache_resource``) and shared by every browser session; each session has its own ``ChatSession`` (the
toolkit-free state machine in ``minicpmv_app.session``) and its own private upload folder. This module only
renders the session's turns and its answer events.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, Optional, Sequence

import streamlit as st

from .. import cli
from .. import settings as schema
from ..session import VIDEO_SUFFIXES, ChatSession, Failed, Progress, State, Stopped, TextDelta, Turn
from .i18n import LANGUAGES, language_of, localized, text, user_message
from .uploads import IMAGE_SUFFIXES, UploadFolder

MODES = {
    "mode_text": dict(accept_file=False, file_type=None),
    "mode_single_image": dict(accept_file=True, file_type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)),
    "mode_multi_image": dict(accept_file="multiple", file_type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)),
    "mode_video": dict(accept_file=True, file_type=sorted(s.lstrip(".") for s in VIDEO_SUFFIXES)),
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
        render_question(turn)
        if turn.state != State.PENDING:
            with st.chat_message("assistant"):
                render_answer(turn, lang)


def render_question(turn: Turn) -> None:
    with st.chat_message("user"):
        for path in turn.files:
            try:
                if os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES:
                    st.video(path)
                else:
                    st.image(path, width=240)
            except Exception:  # a file that failed to decode still has its turn shown, just not its picture
                st.caption("📎 " + os.path.basename(path))
        if turn.text:
            st.markdown(turn.text)


def render_answer(turn: Turn, lang: str) -> None:
    if turn.state == State.FAILED:
        st.error(user_message(turn.error, lang))
    elif turn.state == State.STOPPED and not turn.answer:
        st.caption(text("stopped", lang))
    else:
        st.markdown(turn.answer)


def answer(session: ChatSession, chat, settings: dict, lang: str) -> None:
    """Stream the pending turn's answer into the page: decoding progress, then text; a failure as an error."""
    bar = None
    def pieces() -> Iterator[str]:
        nonlocal bar
        for event in session.answer(chat, settings):
            if isinstance(event, Progress):
                bar = bar or st.progress(0.0, text=text("decoding_video", lang))
                bar.progress(event.done / max(1, event.total), text=text("decoding_video", lang))
            elif isinstance(event, TextDelta):
                yield event.text
            elif isinstance(event, Failed):
                st.error(user_message(event.error, lang))
            elif isinstance(event, Stopped) and not event.answer:
                st.caption(text("stopped", lang))

    with st.chat_message("assistant"):
        st.write_stream(pieces())
        if bar is not None:
            bar.empty()


def browser_language() -> str:
    locale = getattr(getattr(st, "context", None), "locale", None)
    return language_of(locale)


def setting_widget(setting: schema.Setting, lang: str):
    """One schema setting in the sidebar (sampling only here, as upstream's Streamlit demo)."""
    value = setting.default_for(schema.SAMPLING)
    if setting.kind == "text":
        return st.text_area(text(setting.label, lang), value or "")
    cast = int if setting.kind == "int" else float
    return st.slider(text(setting.label, lang), cast(setting.minimum), cast(setting.ui_maximum or setting.maximum),
                     cast(value), cast(setting.step))


def sidebar(default_lang: str) -> tuple[str, str, dict, bool]:
    with st.sidebar:
        codes = list(LANGUAGES)
        lang = st.selectbox("Language / 语言", codes, index=codes.index(default_lang), format_func=LANGUAGES.get, key="lang")
        mode = st.radio(text("mode", lang), list(MODES), format_func=lambda key: text(key, lang), help=text("mode_help", lang))
        settings = {s.name: setting_widget(s, lang) for s in schema.SCHEMA
                    if schema.SAMPLING in s.modes and s.kind != "choice"}
        settings["decode_type"] = schema.SAMPLING
        settings["system_prompt"] = (settings.get("system_prompt") or "").strip() or None
        clear = st.button(text("clear", lang), use_container_width=True)
    return lang, mode, settings, clear


def main() -> None:
    args = parse_args()
    st.set_page_config(page_title="MiniCPM-V", page_icon="🖼️")
    lang, mode, settings, clear = sidebar(args.lang or browser_language())
    st.title(text("title_streamlit", lang))
    with st.spinner(text("loading_model", lang, model=args.model)):
        try:
            chat = load_model(model_options(args))
        except Exception as exc:  # a model that cannot load is one message, not a traceback
            st.error(localized(exc, lang))
            st.stop()
    st.caption(f"`{chat.backend.describe()}`")
    session, uploads = session_state()
    if clear:
        session.clear()
        uploads.clear()

    render_history(session, lang)
    options = MODES[mode]
    placeholder = text("chat_placeholder_media" if options["accept_file"] else "chat_placeholder_text", lang)
    submitted = st.chat_input(placeholder, key=f"input_{mode}", **{k: v for k, v in options.items() if v is not None})
    if not submitted:
        return
    if isinstance(submitted, str):
        question, files = submitted, []
    else:
        question = submitted.text
        files = [str(uploads.save(f.name, f.getvalue())) for f in submitted.files]
    try:
        turn = session.submit(question, files)
    except Exception as exc:
        st.error(localized(exc, lang))
        return
    render_question(turn)
    answer(session, chat, settings, lang)
