"""Baseline for bench_cold_start.py: a plain Gradio Blocks hello-world started like app.py."""

import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr

with gr.Blocks(title="hello") as demo:
    name = gr.Textbox(label="name")
    out = gr.Textbox(label="greeting")
    name.submit(lambda n: f"Hello {n}", name, out)

demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
