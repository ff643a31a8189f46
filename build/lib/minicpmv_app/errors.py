"""Typed exceptions. Every message says what happened and what to do next.

UIs catch ``MiniCPMVError`` and show ``str(exc)``; anything else is a bug.
"""


class MiniCPMVError(Exception):
    """Base class for every error this package raises on purpose.

    ``key`` and ``params`` name the message for the UIs, which show it in the user's language
    (``minicpmv_app/ui/locales``); the Python API keeps the English text.
    """

    def __init__(self, message: str = "", *, key: str | None = None, **params):
        super().__init__(message)
        self.key = key
        self.params = params


class InvalidInputError(MiniCPMVError, ValueError):
    """The request itself is malformed: bad JSON, empty message, wrong roles."""


class MediaError(InvalidInputError):
    """An image or video could not be used (corrupt, not an image, too large)."""


class ModelLoadError(MiniCPMVError, RuntimeError):
    """The checkpoint could not be found, downloaded or loaded."""


class DeviceError(MiniCPMVError, RuntimeError):
    """The requested device or dtype is not available on this machine."""


class GenerationError(MiniCPMVError, RuntimeError):
    """The model failed while answering (out of memory, a remote-code error, a server error)."""


class UnsupportedFeatureError(MiniCPMVError, ValueError):
    """The request asks for something this model or mode cannot do (e.g. streaming beam search)."""
