"""A local web UI for the MiniCPM-V family: the model wrapper, its backends, media handling and the demos."""

__version__ = "0.10.0"

from .errors import (
    DeviceError,
    GenerationError,
    InvalidInputError,
    MediaError,
    MiniCPMVError,
    ModelLoadError,
    UnsupportedFeatureError,
)
from .media import img2base64
from .wrapper import MiniCPMVChat, OmniLMMChat

__all__ = [
    "DeviceError",
    "GenerationError",
    "InvalidInputError",
    "MediaError",
    "MiniCPMVChat",
    "MiniCPMVError",
    "ModelLoadError",
    "OmniLMMChat",
    "UnsupportedFeatureError",
    "img2base64",
]
