"""PickScore (Kirstain et al. 2023, yuvalkirstain/PickScore_v1): a CLIP ViT-H/14 fine-tuned on Pick-a-Pic human
preferences. Loaded as its authors' README does, with transformers: `CLIPModel` from the checkpoint and the
processor of `laion/CLIP-ViT-H-14-laion2B-s32B-b79K`; the score is `logit_scale.exp() * cos(image, text)`
(about 15-25 for ordinary images; only differences between images of one prompt mean much)."""

from __future__ import annotations

from typing import Any, Sequence

from backends.base import Capabilities, ModelSpec
from backends.clip_scorer import ClipScorer

PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"  # the PickScore README's processor


class PickScore(ClipScorer):
    """image_text_similarity is PickScore itself; embeddings are the checkpoint's CLIP embeddings."""

    default_processor = PROCESSOR

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("image_text",), aesthetic=False)

    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "PickScore":
        scorer = super().load(spec, device=device, dtype=dtype)
        scorer.head = None  # PickScore has no aesthetic head (a tiny CLIP brings a random one)
        return scorer

    def image_text_similarity(self, images: Sequence[Any], texts: Sequence[str]) -> Any:
        """PickScore of image i with text i: the checkpoint's logit scale times the cosine."""
        import torch

        cos = super().image_text_similarity(images, texts)
        with torch.inference_mode():
            scale = float(self.model.logit_scale.exp())
        return cos * scale

    def aesthetic(self, images: Sequence[Any]) -> Any:
        return None
