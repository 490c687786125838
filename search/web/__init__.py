"""The web UI and its API: the service, the Gradio app, media access and background runs."""
