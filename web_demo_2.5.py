"""MiniCPM-Llama3-V 2.5 in Gradio: upload one image and chat about it, streaming with Stop.

    python web_demo_2.5.py --model tiny                 # offline toy model, CPU
    python web_demo_2.5.py --model openbmb/MiniCPM-Llama3-V-2_5 --device cuda

On a Hugging Face Space, set `app_file: web_demo_2.5.py`; MINICPMV_MODEL picks the model.
"""

from minicpmv_app.ui.commands import run_demo

if __name__ == "__main__":
    run_demo("2.5", description=__doc__)
