"""Prompt Workbench core: methods, scoring, profiles and the model manager.

Pure Python over `backends/`; nothing here imports Gradio or Streamlit, and importing
this package loads no model.
"""

__version__ = "0.1.0"
