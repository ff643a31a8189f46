"""Media handling: images (base64, paths, PIL) and video frame sampling."""

from .images import MAX_IMAGE_PIXELS, MAX_SIDE, img2base64, load_image, prepare_image
from .video import Video, load_video

__all__ = ["MAX_IMAGE_PIXELS", "MAX_SIDE", "Video", "img2base64", "load_image", "load_video", "prepare_image"]
