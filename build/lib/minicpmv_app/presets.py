"""Decoding presets, as upstream's demos define them, and how user overrides merge into them.

Upstream's remote ``chat()`` only honours keys already present in its default dict for the chosen mode
(``num_beams`` is ignored while sampling, ``top_p`` under beam search). We apply the same rule for every
backend so a setting means the same thing whichever backend runs the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InvalidInputError
from .settings import BEAM_SEARCH, BY_NAME, DEFAULT_MAX_NEW_TOKENS, KNOBS, PRESETS, SAMPLING

MIN_TEMPERATURE = 0.01

# Accepted spellings for the decode type; the UIs and older callers use several.
_ALIASES = {
    "sampling": SAMPLING,
    "sample": SAMPLING,
    "beam search": BEAM_SEARCH,
    "beam_search": BEAM_SEARCH,
    "beam": BEAM_SEARCH,
    "search": BEAM_SEARCH,
}


@dataclass(frozen=True)
class GenerationSettings:
    """Resolved settings for one generation: the mode, the generate() kwargs and the token budget."""

    decode_type: str = SAMPLING
    params: Mapping[str, Any] = field(default_factory=lambda: dict(PRESETS[SAMPLING]))
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    system_prompt: str = ""
    knobs: Mapping[str, Any] = field(default_factory=dict)  # the model's own knobs (settings.KNOBS), resolved

    @property
    def sampling(self) -> bool:
        return self.decode_type == SAMPLING

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` (transformers' names)."""
        kwargs = dict(self.params)
        kwargs["do_sample"] = self.sampling
        kwargs["max_new_tokens"] = self.max_new_tokens
        return kwargs

    def record(self) -> dict[str, Any]:
        """Everything that decides an answer, as plain data (an export's run card)."""
        return {"decode_type": self.decode_type, **dict(self.params), "max_new_tokens": self.max_new_tokens,
                "system_prompt": self.system_prompt, **dict(self.knobs)}


def normalise_decode_type(value: Any) -> str:
    if value is None:
        return SAMPLING
    if isinstance(value, bool):  # upstream's ``sampling=True/False``
        return SAMPLING if value else BEAM_SEARCH
    key = str(value).strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    raise InvalidInputError(
        f"Unknown decode type {value!r}: use {SAMPLING!r} or {BEAM_SEARCH!r}."
    )


def resolve(
    decode_type: Any = None,
    *,
    max_new_tokens: int | None = None,
    system_prompt: str | None = None,
    model_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    knobs: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> GenerationSettings:
    """Merge overrides into the preset for ``decode_type``.

    ``sampling=True/False`` is accepted as an alias for the decode type (upstream's spelling).
    ``model_defaults`` holds a model's own changes to a preset (1.0/2.0 sample at temperature 0.6). Keys the
    preset does not have are dropped, as upstream does; ``None`` values mean "keep the preset".
    ``knobs`` are the model's own knobs with their defaults; a knob it does not take is refused.
    """
    knobs = dict(knobs or {})
    for name in [k for k in overrides if k in KNOBS]:
        value = overrides.pop(name)
        if value is None:
            continue
        if name not in knobs:
            raise InvalidInputError(
                f"This model does not take {name}; its own settings are: {', '.join(knobs) or 'none'}.",
                key="knob_not_taken", name=name, knobs=", ".join(knobs) or "-",
            )
        knobs[name] = _checked(name, value)
    if "sampling" in overrides:
        sampling = overrides.pop("sampling")
        if decode_type is None and sampling is not None:
            decode_type = bool(sampling)
    mode = normalise_decode_type(decode_type)
    params = dict(PRESETS[mode])
    params.update((model_defaults or {}).get(mode, {}))
    for key, value in overrides.items():
        if value is None or key not in params:
            continue
        params[key] = _checked(key, value)
    if mode == SAMPLING and params.get("temperature") == 0:
        # generate() refuses temperature 0 when sampling; a slider at 0 means "as good as greedy".
        params["temperature"] = MIN_TEMPERATURE
    budget = DEFAULT_MAX_NEW_TOKENS if max_new_tokens is None else _checked("max_new_tokens", max_new_tokens)
    return GenerationSettings(
        decode_type=mode,
        params=params,
        max_new_tokens=int(budget),
        system_prompt=system_prompt or "",
        knobs=knobs,
    )


def _checked(key: str, value: Any) -> Any:
    return BY_NAME[key].check(value)
