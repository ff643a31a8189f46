"""MiniCPM-V 2.6 and later in Gradio: several images, video, few-shot, streaming with Stop.

    python web_demo_2.6.py --model tiny                 # offline toy model, CPU
    python web_demo_2.6.py --model openbmb/MiniCPM-V-2_6 --device cuda
"""

import argparse

from minicpmv_app import cli
from minicpmv_app.ui.gradio_26 import build_demo
from minicpmv_app.ui.gradio_common import launch

# Hugging Face Spaces: set `app_file: web_demo_2.6.py` in the Space's README; MINICPMV_MODEL picks the model.


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.model_arguments(parser, default_model="openbmb/MiniCPM-V-2_6")
    cli.server_arguments(parser, default_port=8885)
    args = cli.parse(parser, argv)
    cli.setup_logging()
    chat = cli.load_chat(args)
    launch(build_demo(chat), args, concurrency=chat.backend.concurrency)


if __name__ == "__main__":
    main()
