"""The Streamlit demo: text, one image, several images or a video, multi-turn, streaming replies.

Run with ``streamlit run web_demo_streamlit.py -- --model tiny``. The model is loaded once per process
(``st.cache_resource``) and shared by every browser session; each session has its own ``ChatSession`` and
its own private upload folder.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator, Optional, Sequence

import streamlit as st

from .. import cli
from .session import VIDEO_SUFFIXES, ChatSession
from .i18n import LANGUAGES, language_of, localized, text
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


def render_history(session: ChatSession) -> None:
    index = 0
    display = session.display
    while index < len(display):
        role = display[index]["role"]
        with st.chat_message(role):
            # Consecutive bubbles of one role (files, then text) share one chat message.
            while index < len(display) and display[index]["role"] == role:
                render_bubble(display[index], index in session.error_bubbles)
                index += 1


def render_bubble(bubble: dict, is_error: bool) -> None:
    content = bubble["content"]
    if isinstance(content, dict):
        path = content["path"]
        try:
            if os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES:
                st.video(path)
            else:
                st.image(path, width=240)
        except Exception:  # a file that failed to decode still has its turn shown, just not its picture
            st.caption("📎 " + os.path.basename(path))
    elif is_error:
        st.error(content)
    else:
        st.markdown(content)


def increments(session: ChatSession, chat, settings: dict, lang: str) -> Iterator[str]:
    """Text pieces for ``st.write_stream`` from the session's growing answer."""
    shown = ""
    for display in session.stream_answer(chat, settings, lang=lang):
        content = display[-1]["content"]
        if len(display) - 1 in session.error_bubbles:
            return
        if content.startswith(shown) and len(content) > len(shown):
            yield content[len(shown):]
            shown = content


def browser_language() -> str:
    locale = getattr(getattr(st, "context", None), "locale", None)
    return language_of(locale)


def sidebar(default_lang: str) -> tuple[str, str, dict]:
    with st.sidebar:
        codes = list(LANGUAGES)
        lang = st.selectbox("Language / 语言", codes, index=codes.index(default_lang), format_func=LANGUAGES.get, key="lang")
        mode = st.radio(text("mode", lang), list(MODES), format_func=lambda key: text(key, lang), help=text("mode_help", lang))
        settings = dict(
            max_new_tokens=st.slider(text("max_new_tokens", lang), 1, 4096, 1024),
            temperature=st.slider(text("temperature", lang), 0.0, 2.0, 0.7, 0.05),
            top_p=st.slider(text("top_p", lang), 0.0, 1.0, 0.8, 0.05),
            top_k=st.slider(text("top_k", lang), 0, 200, 100),
            repetition_penalty=st.slider(text("repetition_penalty", lang), 1.0, 3.0, 1.05, 0.01),
        )
        clear = st.button(text("clear", lang), use_container_width=True)
    return lang, mode, dict(settings, decode_type="Sampling", clear=clear)


def main() -> None:
    args = parse_args()
    st.set_page_config(page_title="MiniCPM-V", page_icon="🖼️")
    lang, mode, settings = sidebar(args.lang or browser_language())
    st.title(text("title_streamlit", lang))
    with st.spinner(text("loading_model", lang, model=args.model)):
        try:
            chat = load_model(model_options(args))
        except Exception as exc:  # a model that cannot load is one message, not a traceback
            st.error(localized(exc, lang))
            st.stop()
    st.caption(f"`{chat.backend.describe()}`")
    session, uploads = session_state()
    if settings.pop("clear"):
        session.clear()
        uploads.clear()

    render_history(session)
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
        session.add_user_turn(question, files)
    except Exception as exc:
        st.error(localized(exc, lang))
        return
    render_history_tail(session)
    with st.chat_message("assistant"):
        st.write_stream(increments(session, chat, settings, lang))
        if len(session.display) - 1 in session.error_bubbles:
            st.error(session.display[-1]["content"])


def render_history_tail(session: ChatSession) -> None:
    """Show the user's just-sent turn (everything after the last assistant bubble)."""
    start = len(session.display)
    while start > 0 and session.display[start - 1]["role"] == "user":
        start -= 1
    with st.chat_message("user"):
        for index in range(start, len(session.display)):
            render_bubble(session.display[index], False)
