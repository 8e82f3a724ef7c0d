"""Video rewards per dimension, in the spirit of Prompt-A-Video's filter (VideoScore's TVA/TC/DD, LAION
aesthetic over 4 frames) with the models a profile has: a CLIP-family scorer and pixels. Alignment is
scored against the user's ORIGINAL prompt (VBench #89) and, separately, against the refined prompt. Every
score records the model ids, the frames sampled and the package versions; random-weight models are labelled.
All candidates' sampled frames go through the scorer in ONE batched image-embedding call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from workbench.types import Provenance
from workbench.common.scores import RANDOM_NOTE, ImageScores, Score, as_numpy, check_weights, weighted_total
from workbench.common.reward_models import REWARD_METRICS, REWARD_ROLES, REWARD_SCALE, checkpoint_info

METRICS: dict[str, str] = {
    "align_original": "text-video alignment with the ORIGINAL prompt: mean CLIP frame-text cosine over sampled frames",
    "align_refined": "text-video alignment with the refined prompt: mean CLIP frame-text cosine over sampled frames",
    "temporal": "temporal consistency: mean CLIP cosine of consecutive sampled frames",
    "dynamic": "dynamic degree: mean absolute pixel change between consecutive sampled frames (0-1, 64 px grey)",
    "aesthetic": "LAION linear aesthetic head, mean over 4 evenly spaced frames (~1-10)",
    "safety": "1 = the prompt passes the safety check (the profile's safety role + the keyword rule, "
              "workbench/safety), 0 = flagged",
    # the image reward models a profile names (PickScore, ImageReward, HPSv2.1), per frame, mean over 4 frames
    **{m: REWARD_METRICS[m] + ", mean over 4 evenly spaced frames" for m in REWARD_ROLES},
}
# Prompt-A-Video's filter weights VQ+TC+FC+1.1*DD+1.3*TVA+0.8*AES: alignment weighs most. Alignment with the
# refined prompt is shown but not counted by default (a rewrite could praise itself); safety is a gate, not a
# weight: a flagged candidate is never chosen as best nor as a DPO "chosen".
DEFAULT_WEIGHTS: dict[str, float] = {"align_original": 1.3, "align_refined": 0.0, "temporal": 1.0, "dynamic": 1.1,
                                     "aesthetic": 0.8, "safety": 0.0, "pickscore": 0.5, "image_reward": 0.5, "hps": 0.5}
SCALE = {"aesthetic": 0.1, **{m: REWARD_SCALE[m] for m in REWARD_ROLES if m in REWARD_SCALE}}  # onto ~0-1
AESTHETIC_FRAMES = 4


@dataclass
class RewardSettings:
    frames_sampled: int = 8  # evenly spaced frames per video fed to CLIP (all of them when the clip is shorter)
    motion_size: int = 64  # frames are shrunk to this many pixels (grey) before measuring motion

    def check(self) -> "RewardSettings":
        from workbench.common.inputs import check_count

        check_count(self.frames_sampled, "frames_sampled", 2, 64)
        check_count(self.motion_size, "motion_size", 8, 512)
        return self


def sample_indices(n_frames: int, k: int) -> list[int]:
    """`k` evenly spaced frame indices over `n_frames` (first and last included)."""
    if n_frames <= k:
        return list(range(n_frames))
    return sorted({round(i * (n_frames - 1) / (k - 1)) for i in range(k)})


def motion(frames: Sequence[Any], size: int = 64) -> float | None:
    """Mean absolute grey-level change between consecutive frames, 0-1 (None for a single frame)."""
    import numpy as np

    if len(frames) < 2:
        return None
    grey = [np.asarray(f.convert("L").resize((size, size)), dtype=np.float32) / 255.0 for f in frames]
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(grey, grey[1:])]))


def _unit(x: Any) -> Any:
    import numpy as np

    x = as_numpy(x)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def score_videos(scorer: Any, original: str, prompts: Sequence[str], videos: Sequence[Sequence[Any]],
                 video_provenance: Sequence[Provenance | None] | None = None,
                 weights: dict[str, float] | None = None, settings: RewardSettings | None = None,
                 batched: bool = True, safety: Any = None,
                 rewards: dict[str, Any] | None = None) -> list[ImageScores]:
    """Scores for video i (its frames) rendered from prompts[i]; `original` is the user's own prompt.
    `batched=False` embeds one frame per call (the benchmark's baseline). `safety` (texts -> SafetyVerdicts,
    `workbench.safety.checker(ctx, profile)`) judges the safety flag; without it the keyword rule alone does, and
    its provenance says so. `rewards`: the profile's image reward models by metric
    (workbench.common.reward_models.reward_models), each scoring the aesthetic's 4 frames with the original prompt,
    as Prompt-A-Video scores MPS and aesthetic over 4 frames; absent ones are left out."""
    from workbench.safety import check_texts

    import numpy as np

    settings = (settings or RewardSettings()).check()
    weights = check_weights(weights, METRICS, DEFAULT_WEIGHTS)
    if len(prompts) != len(videos):
        raise ValueError(f"need one prompt per video, got {len(prompts)} prompts and {len(videos)} videos")
    n = len(videos)
    if n == 0:
        return []
    if any(len(v) == 0 for v in videos):
        raise ValueError("a video has no frames to score")
    video_provenance = list(video_provenance or [None] * n)
    verdicts = safety(list(prompts)) if safety is not None else check_texts(None, list(prompts))
    picks = [sample_indices(len(v), settings.frames_sampled) for v in videos]
    frames = [v[i] for v, idx in zip(videos, picks) for i in idx]
    if batched:
        img = _unit(scorer.image_embeddings(frames))  # every candidate's frames in one call
    else:
        img = np.concatenate([_unit(scorer.image_embeddings([f])) for f in frames])
    texts = list(dict.fromkeys([original, *prompts]))
    txt = dict(zip(texts, _unit(scorer.text_embeddings(texts))))
    aes_picks = [sample_indices(len(v), AESTHETIC_FRAMES) for v in videos]
    aes_frames = [v[i] for v, idx in zip(videos, aes_picks) for i in idx]
    aes_raw = scorer.aesthetic(aes_frames)  # None: no head
    reward_raw = {m: as_numpy(r.image_text_similarity(aes_frames, [original] * len(aes_frames))).reshape(-1)
                  for m, r in (rewards or {}).items()}
    out, start, aes_start = [], 0, 0
    for k in range(n):
        emb = img[start:start + len(picks[k])]
        start += len(picks[k])
        src = video_provenance[k]
        info = {"frames_sampled": picks[k], "frames_in_video": len(videos[k]), "batched_clip_call": batched}
        if src is not None:
            info.update(video_model=src.model_id, video_seed=src.seed, video_random_weights=src.random_weights)
        verdict = verdicts[k]
        temporal = float(np.mean(np.sum(emb[1:] * emb[:-1], axis=-1))) if len(emb) > 1 else None
        dyn = motion([videos[k][i] for i in picks[k]], settings.motion_size)
        scores = {
            "align_original": Score("align_original", float(np.mean(emb @ txt[original])),
                                    _prov(scorer, "align_original", text="original", **info)),
            "align_refined": Score("align_refined", float(np.mean(emb @ txt[prompts[k]])),
                                   _prov(scorer, "align_refined", text="refined", **info)),
            "temporal": (Score("temporal", temporal, _prov(scorer, "temporal", **info)) if temporal is not None
                         else Score("temporal", None, None, note="needs two or more frames")),
            "dynamic": (Score("dynamic", dyn, _pixel_prov("dynamic", size=settings.motion_size, **info))
                        if dyn is not None else Score("dynamic", None, None, note="needs two or more frames")),
            "safety": Score("safety", 1.0 if verdict.safe else 0.0, _safety_prov(verdict),
                            note="safe" if verdict.safe else verdict.describe()),
        }
        if aes_raw is None:
            scores["aesthetic"] = Score("aesthetic", None, None,
                                        note="this profile's CLIP scorer has no aesthetic head")
        else:
            vals = as_numpy(aes_raw)[aes_start:aes_start + len(aes_picks[k])]
            scores["aesthetic"] = Score("aesthetic", float(np.mean(vals)),
                                        _prov(scorer, "aesthetic", **{**info, "frames_sampled": aes_picks[k]}),
                                        note="uncalibrated linear head")
        for metric, values in reward_raw.items():
            frames_info = {**info, "frames_sampled": aes_picks[k]}
            scores[metric] = Score(metric, float(np.mean(values[aes_start:aes_start + len(aes_picks[k])])),
                                   _prov(rewards[metric], metric, text="original", **checkpoint_info(rewards[metric]),
                                         **frames_info))
        aes_start += len(aes_picks[k])
        for s in scores.values():
            if s.random_weights and RANDOM_NOTE not in s.note:
                s.note = (s.note + "; " if s.note else "") + RANDOM_NOTE
        item = ImageScores(prompt=prompts[k], scores={m: scores[m] for m in METRICS if m in scores})
        item.total = total(item.scores, weights)
        out.append(item)
    return out


def total(scores: dict[str, Score], weights: dict[str, float] | None = None) -> Score:
    return weighted_total(scores, weights, METRICS, DEFAULT_WEIGHTS, SCALE, source="workbench.t2v.rewards")


def _prov(backend: Any, metric: str, **settings: Any) -> Provenance:
    return Provenance.of(backend, settings={"metric": metric, "definition": METRICS[metric], **settings})


def _pixel_prov(metric: str, **settings: Any) -> Provenance:
    settings = {k: v for k, v in settings.items() if k != "batched_clip_call"}
    return Provenance(model_id="pixels", backend="workbench.t2v.rewards",
                      random_weights=bool(settings.get("video_random_weights")),
                      settings={"metric": metric, "definition": METRICS[metric], **settings})


def _safety_prov(verdict: Any) -> Provenance:
    """The verdict's source (rule + model) and its provenance (the model's own record, its scores)."""
    model = verdict.provenance.get("model") or {}
    return Provenance(model_id=verdict.source, backend="workbench.safety", device=model.get("device"),
                      random_weights=bool(model.get("random_weights", False)),
                      settings={"metric": "safety", "definition": METRICS["safety"],
                                "categories": list(verdict.categories), "triggers": verdict.triggers,
                                "verdict": verdict.provenance})


def is_safe(item: ImageScores | dict[str, Any]) -> bool:
    data = item.to_dict() if isinstance(item, ImageScores) else item
    return (data.get("scores", {}).get("safety") or {}).get("value", 1.0) != 0.0


def total_value(item: ImageScores | dict[str, Any]) -> float | None:
    data = item.to_dict() if isinstance(item, ImageScores) else item
    return (data.get("total") or {}).get("value")
