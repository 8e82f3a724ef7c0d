"""The settings and result types pages and scripts need, re-exported so that nothing above `workbench`
imports `backends` directly (the layers point one way: backends <- workbench <- pages <- app)."""

from backends.base import (  # noqa: F401
    Conversation, EmbeddingResult, Generation, GenerationSettings, ImageResult, ImageSettings, Message, ModelSpec,
    VideoResult, VideoSettings, VisionOutput,
)
from backends.provenance import Provenance, package_versions  # noqa: F401
