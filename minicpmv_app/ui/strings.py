"""Every piece of text the demos show, in one place (one table per language)."""

from __future__ import annotations

EN = {
    "title_26": "MiniCPM-V 2.6 and later: images, several images, video",
    "title_25": "MiniCPM-Llama3-V 2.5: chat about one image",
    "model_info": "Model: {model}",
    "tab_chat": "Chat",
    "tab_few_shot": "Few-shot",
    "chat_label": "Chat",
    "input_placeholder": "Ask about images or a video (drop files here)…",
    "send": "Send",
    "stop": "Stop",
    "regenerate": "Regenerate",
    "clear": "Clear",
    "settings": "Generation settings",
    "decode_type": "Decode type",
    "decode_info": "Sampling streams its answer; beam search answers once, whole.",
    "temperature": "Temperature",
    "top_p": "Top p",
    "top_k": "Top k",
    "repetition_penalty": "Repetition penalty",
    "num_beams": "Beams",
    "max_new_tokens": "Max new tokens",
    "system_prompt": "System prompt (optional)",
    "examples": "Examples (made by this project, no download)",
    "few_shot_help": "Add examples (an image, a question, the answer you want), then ask about a new image. "
    "The examples go to the model as earlier turns.",
    "example_image": "Example image",
    "example_user": "Example question",
    "example_assistant": "Expected answer",
    "add_example": "Add example",
    "test_image": "New image",
    "test_question": "Question about the new image",
    "ask": "Ask",
    "image": "Image",
    "upload_first": "Upload an image first.",
    "new_image_new_chat": "New image: a new conversation has started.",
    "decoding_video": "Decoding video",
    "error_prefix": "⚠️ {message}",
    "unexpected_error": "Something went wrong while answering ({kind}). The chat is still usable; try again or press Clear.",
    "nothing_to_regenerate": "There is no answer to regenerate yet.",
    "stopped": "(stopped)",
    "title_streamlit": "MiniCPM-V: chat about text, images and video",
    "mode": "Mode",
    "mode_text": "Text",
    "mode_single_image": "Single Image",
    "mode_multi_image": "Multiple Images",
    "mode_video": "Video",
    "mode_help": "Attach files with the clip in the message box. Earlier turns, with their images, stay in the conversation.",
    "chat_placeholder_text": "Ask anything…",
    "chat_placeholder_media": "Ask about the attached file(s)…",
    "loading_model": "Loading {model} (first start downloads it)…",
}

LANGUAGES = {"en": EN}


def text(key: str, lang: str = "en", **values) -> str:
    table = LANGUAGES.get(lang, EN)
    return table.get(key, EN[key]).format(**values)
