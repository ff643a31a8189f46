"""User interfaces: the shared session logic and the Gradio and Streamlit demos."""
