"""Hugging Face ZeroGPU: a GPU is attached for each answer, for a duration asked for up front.

The ``spaces`` package's default slot is 60 s (``spaces/zero/client.py``, DEFAULT_SCHEDULE_DURATION), which a
video, a long answer or a thinking model outruns, and the answer is cut. So the slot is sized from the request
(new tokens, images, video frames, thinking) and capped by ``MINICPMV_ZEROGPU_MAX_S``; a request over the cap is
refused with a message before it starts. Only generation runs in the slot: media are decoded before it, on the CPU.
Off ZeroGPU ``spaces.GPU`` passes the function through, and the answer runs in-process with Stop as usual.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterator

from ..devices import on_zerogpu
from ..errors import UnsupportedFeatureError

# Seconds, for an 8B model on a ZeroGPU slice (H200 MIG), on the safe side: slot start and prefill, then per
# generated token (~15 tokens/s with margin), per image (slicing, vision encoder) and per video frame.
BASE_S = 15.0
PER_TOKEN_S = 0.06
PER_IMAGE_S = 1.5
PER_FRAME_S = 0.5
THINKING_FACTOR = 1.5
DEFAULT_CAP_S = 300


def cap_seconds() -> int:
    try:
        return max(1, int(os.environ.get("MINICPMV_ZEROGPU_MAX_S", DEFAULT_CAP_S)))
    except ValueError:
        return DEFAULT_CAP_S


def estimate_seconds(max_new_tokens: int, images: int = 0, frames: int = 0, thinking: bool = False) -> int:
    """GPU seconds one answer needs: grows with every input, never below the base."""
    seconds = BASE_S + PER_TOKEN_S * max(0, max_new_tokens) + PER_IMAGE_S * max(0, images) + PER_FRAME_S * max(0, frames)
    return math.ceil(seconds * (THINKING_FACTOR if thinking else 1.0))


def needed_seconds(conversation, generation) -> int:
    """For a conversation about to be answered: every image and sampled frame in it goes through the model."""
    return estimate_seconds(generation.max_new_tokens, len(conversation.images),
                            sum(len(v) for v in conversation.videos), bool(generation.knobs.get("enable_thinking")))


def slot_seconds(conversation, generation, *_options) -> int:
    """What ``spaces.GPU`` is asked for (its dynamic duration gets the task's own arguments, the stream options too)."""
    return min(needed_seconds(conversation, generation), cap_seconds())


def gpu(function: Callable, duration: Callable) -> Callable:
    """``spaces.GPU(function, duration=...)`` where the ``spaces`` package is installed, else the function."""
    try:
        import spaces
    except ImportError:
        return function
    return spaces.GPU(function, duration=duration)


def generator_for(chat) -> Callable[..., Iterator[str]]:
    """What a session calls to generate: ``chat.stream_conversation``, through a sized GPU slot on ZeroGPU."""

    def on_gpu(conversation, generation, reasoning=False, keep_grounding=False) -> Iterator[str]:
        yield from chat.stream_conversation(conversation, generation, reasoning=reasoning, keep_grounding=keep_grounding)

    in_slot = gpu(on_gpu, slot_seconds)

    def generate(conversation, generation, *, stop=None, reasoning=False, keep_grounding=False) -> Iterator[str]:
        if not on_zerogpu():
            return chat.stream_conversation(conversation, generation, stop=stop, reasoning=reasoning,
                                            keep_grounding=keep_grounding)
        needed, cap = needed_seconds(conversation, generation), cap_seconds()
        if needed > cap:
            raise UnsupportedFeatureError(
                f"This answer would need about {needed} s of GPU time; this Space allows {cap} s per answer. "
                "Lower max new tokens, or use fewer images or a shorter video.",
                key="gpu_time_over_cap", needed=needed, cap=cap,
            )
        return in_slot(conversation, generation, reasoning, keep_grounding)  # Stop ends the display; the slot ends with the answer

    return generate
