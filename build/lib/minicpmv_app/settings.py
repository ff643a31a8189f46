"""Every generation setting, once, as data: its type, range, defaults, label, and who honours it.

Settings marked ``knob`` belong to some models only (thinking, token compression, image slices, video frames):
a backend lists the knobs its model takes, with the model card's defaults (``Backend.knobs``); the UIs show only
those, and ``MiniCPMVChat.settings`` refuses the others with a message.

The Gradio panel, the Streamlit sidebar, the command line, ``MiniCPMVChat.settings`` validation and the OpenAI
request mapping are all derived from ``SCHEMA``. Per-preset defaults live in ``PRESETS`` below (upstream's
values, kept here with the schema); a setting's ``modes`` says which decode modes use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from types import MappingProxyType

from .errors import InvalidInputError

SAMPLING = "Sampling"
BEAM_SEARCH = "Beam Search"
BOTH = (SAMPLING, BEAM_SEARCH)
# Upstream's decoding presets (its demos and remote chat()): a setting's default in each mode.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    SAMPLING: MappingProxyType({"top_p": 0.8, "top_k": 100, "temperature": 0.7, "repetition_penalty": 1.05}),
    BEAM_SEARCH: MappingProxyType({"num_beams": 3, "repetition_penalty": 1.2}),
})
DEFAULT_MAX_NEW_TOKENS = 1024


# One range per setting: the page's sliders and the API (MiniCPMVChat.settings) accept the same values, so what the
# page allows works through the API and the reverse; a value outside is refused with the range in the message.
@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "choice", "float", "int", "bool" or "text"
    label: str  # locale key (minicpmv_app/ui/locales)
    default: Any = None  # when no preset gives one
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    step: Optional[float] = None
    modes: tuple[str, ...] = BOTH  # decode modes that use it (the others show it read-only)
    openai: Optional[str] = None  # the request field on an OpenAI-compatible server; None: not sent
    openai_extra: bool = False  # outside OpenAI's own fields: dropped once where a server refuses it
    info: Optional[str] = None  # locale key of a hint
    knob: bool = False  # taken by some models only (Backend.knobs says which, with their defaults)
    choices: tuple = ()  # for a knob of kind "choice"
    openai_path: tuple = ()  # where a knob goes in an OpenAI-compatible request, e.g. ("mm_processor_kwargs",)

    def default_for(self, mode: str = SAMPLING, model_presets: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Any:
        """The value a UI starts from: the model's own (its checkpoint's sampling values), else upstream's preset."""
        own = (model_presets or {}).get(mode, {})
        return own[self.name] if self.name in own else PRESETS.get(mode, {}).get(self.name, self.default)

    def check(self, value: Any) -> Any:
        """``value`` converted to this setting's type, or ``InvalidInputError`` naming the range."""
        if self.kind == "text":
            return "" if value is None else str(value)
        if self.kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if self.kind == "choice":
            if self.choices and value not in self.choices:
                raise InvalidInputError(f"{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}.",
                                        key="setting_choice", name=self.name, value=str(value),
                                        choices=", ".join(map(str, self.choices)))
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{self.name} must be a number, got {value!r}.", key="setting_not_number",
                                    name=self.name, value=str(value)) from None
        if self.minimum is not None and self.maximum is not None and not (self.minimum <= number <= self.maximum):
            raise InvalidInputError(
                f"{self.name}={value!r} is out of range; use a value from {self.minimum:g} to {self.maximum:g}.",
                key="setting_out_of_range", name=self.name, value=str(value), low=f"{self.minimum:g}",
                high=f"{self.maximum:g}",
            )
        return int(number) if self.kind == "int" else number


SCHEMA: tuple[Setting, ...] = (
    Setting("decode_type", "choice", "decode_type", default=SAMPLING, info="decode_info"),
    Setting("temperature", "float", "temperature", minimum=0.0, maximum=5.0, step=0.05,
            modes=(SAMPLING,), openai="temperature"),
    Setting("top_p", "float", "top_p", minimum=0.0, maximum=1.0, step=0.05, modes=(SAMPLING,), openai="top_p"),
    Setting("top_k", "int", "top_k", minimum=0, maximum=1000, step=1, modes=(SAMPLING,),
            openai="top_k", openai_extra=True),
    Setting("repetition_penalty", "float", "repetition_penalty", minimum=0.1, maximum=5.0, step=0.01,
            openai="repetition_penalty", openai_extra=True),
    Setting("num_beams", "int", "num_beams", minimum=1, maximum=16, step=1, modes=(BEAM_SEARCH,)),
    Setting("max_new_tokens", "int", "max_new_tokens", default=DEFAULT_MAX_NEW_TOKENS, minimum=1, maximum=32_768,
            step=1, openai="max_tokens"),
    Setting("system_prompt", "text", "system_prompt", default=""),
    # Per-model knobs. Servers get them in the request fields vLLM and SGLang read; others ignore them.
    Setting("enable_thinking", "bool", "setting_thinking", default=False, knob=True, info="thinking_info",
            openai_path=("chat_template_kwargs",)),
    Setting("downsample_mode", "choice", "setting_detail", default="16x", choices=("16x", "4x"), knob=True,
            info="detail_info", openai_path=("mm_processor_kwargs",)),
    Setting("max_slice_nums", "int", "setting_slices", minimum=1, maximum=64, step=1, knob=True,
            info="slices_info", openai_path=("mm_processor_kwargs",)),
    Setting("max_num_frames", "int", "setting_max_frames", minimum=1, maximum=1024, step=1,
            knob=True, info="max_frames_info", openai_path=("mm_processor_kwargs",)),
    Setting("stack_frames", "int", "setting_stack_frames", minimum=1, maximum=10, step=1, knob=True,
            info="stack_frames_info", openai_path=("mm_processor_kwargs",)),
)
BY_NAME: Mapping[str, Setting] = {s.name: s for s in SCHEMA}
NAMES: tuple[str, ...] = tuple(BY_NAME)
KNOBS: tuple[str, ...] = tuple(s.name for s in SCHEMA if s.knob)


def from_values(values, names: tuple = NAMES) -> dict:
    """A UI's values, in ``names`` order (the schema's, less the knobs its model does not take), as
    ``MiniCPMVChat.settings`` keywords."""
    settings = dict(zip(names, values))
    settings["system_prompt"] = (settings.get("system_prompt") or "").strip() or None
    return settings
