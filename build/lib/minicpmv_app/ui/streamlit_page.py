"""The page ``minicpmv-streamlit`` runs (Streamlit runs a file, and a package module with relative imports cannot be
one); ``web_demo_streamlit.py`` is the same page for ``streamlit run`` from the repository."""

from minicpmv_app.ui.streamlit_app import main

main()
