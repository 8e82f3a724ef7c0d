"""What a person reads from Markdown the app escaped (Streamlit's st.error body in AppTest is the Markdown
source): backslash escapes and HTML entities undone, as the renderer does."""

import html
import re


def shown(markdown: str) -> str:
    return html.unescape(re.sub(r"\\(.)", r"\1", markdown.replace("  \n", "\n")))
