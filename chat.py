"""Upstream-compatible entry point: ``from chat import MiniCPMVChat, img2base64``.

    import json
    from chat import MiniCPMVChat, img2base64

    chat_model = MiniCPMVChat("openbmb/MiniCPM-V-2_6")   # or "tiny", a folder, a ModelScope id
    msgs = [{"role": "user", "content": "What is in the image?"}]
    print(chat_model.chat({"image": img2base64("assets/chart.png"), "question": json.dumps(msgs)}))
"""

from minicpmv_app import MiniCPMVChat, OmniLMMChat, img2base64
from minicpmv_app.errors import MiniCPMVError

__all__ = ["MiniCPMVChat", "MiniCPMVError", "OmniLMMChat", "img2base64"]
