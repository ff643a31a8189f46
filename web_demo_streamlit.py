"""MiniCPM-V in Streamlit: text, one image, several images or a video, multi-turn, streaming.

    streamlit run web_demo_streamlit.py -- --model tiny
    streamlit run web_demo_streamlit.py --server.maxUploadSize 50 -- --model openbmb/MiniCPM-V-2_6 --device cuda

`.streamlit/config.toml` makes it listen on 127.0.0.1 only; pass --server.address 0.0.0.0 to share it.
"""

from minicpmv_app.ui.streamlit_app import main

main()
