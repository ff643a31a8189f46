"""MiniCPM-V 2.6 and later in Gradio: several images, video, few-shot, streaming with Stop.

    python web_demo_2.6.py --model tiny                 # offline toy model, CPU
    python web_demo_2.6.py --model openbmb/MiniCPM-V-2_6 --device cuda
    python web_demo_2.6.py --model tiny --compare-model tiny-random   # Compare tab: two models side by side

On a Hugging Face Space, set `app_file: web_demo_2.6.py`; MINICPMV_MODEL picks the model.
"""

from minicpmv_app.ui.commands import run_demo

if __name__ == "__main__":
    run_demo("2.6", description=__doc__)
