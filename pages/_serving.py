"""The Gradio side of serving many arrivals at once (workbench/serving.py has the why, the lean config and the
static-route cache):

- `LeanBlocks` is a gr.Blocks whose config leaves out what no client reads (`workbench.serving.lean_config`);
- `share_session_configs`: each block's config is built once, not once per new session (Gradio's session
  state rebuilt all ~700 of the workbench's on a session's first event, on the event loop: 0.5-1 s each arrival
  on a loaded 2-core box, so /queue/join requests of later arrivals timed out).
"""

from __future__ import annotations

import functools
from typing import Any

from workbench.serving import lean_config


def share_session_configs(blocks: Any) -> None:
    """Build each shared block's config once, not once per new session.

    Gradio's SessionState, created on a session's first event, computes `config_for_block` for every block of the
    Blocks (introspecting each block's constructor signature and building its API schema), on the event loop.
    For the workbench's ~700 blocks that was most of the loop's time when 50 sessions arrived together, so their
    /queue/join requests waited past the client's 5 s timeout. A shared block (one of the Blocks' own, not a
    session's updated copy) gives the same config every time: it is built once and each session gets its own
    copy of the two levels Gradio writes to (the block's entry and its props)."""
    from gradio.blocks import BlocksConfig

    config = blocks.default_config
    if getattr(config, "shares_session_configs", False):
        return
    built: dict[int, tuple[Any, dict]] = {}
    base = type(config)

    class SharedSessionConfig(base):
        shares_session_configs = True

        def config_for_block(self, _id, rendered_ids, block, renderable=None):  # type: ignore[override]
            if renderable is not None or rendered_ids or config.blocks.get(_id) is not block:
                return BlocksConfig.config_for_block(_id, rendered_ids, block, renderable)
            hit = built.get(_id)
            if hit is None or hit[0] is not block:
                hit = built[_id] = (block, BlocksConfig.config_for_block(_id, rendered_ids, block, renderable))
            entry = dict(hit[1])
            if "props" in entry:
                entry["props"] = dict(entry["props"])
            return entry

        def __copy__(self):  # a session's copy (SessionState) keeps the sharing
            new = base.__copy__(self)
            new.__class__ = SharedSessionConfig
            return new

    config.__class__ = SharedSessionConfig


@functools.cache
def lean_blocks_class():
    import gradio as gr

    class LeanBlocks(gr.Blocks):
        """gr.Blocks whose config leaves out what no client reads (see `lean_config`) and whose sessions share
        the blocks' configs (see `share_session_configs`)."""

        def get_config_file(self):  # noqa: D401 - Gradio's name
            share_session_configs(self)
            return lean_config(super().get_config_file())

    return LeanBlocks
