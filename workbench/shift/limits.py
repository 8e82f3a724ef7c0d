"""Limits and settings of a behaviour-shift analysis (Wu et al., NAACL'24), checked once up front.

Attribution costs grow with prompt tokens x output tokens x integrated-gradients steps, so the limits keep
one request to a few seconds with tiny models and about a minute with the 270M offline pair on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("gradient_x_input", "integrated_gradients", "feature_ablation")
IG_BASELINES = ("pad", "zero", "mean")
IG_BASELINE_LABELS = {  # short, for a menu; the attribution's note says what exactly moved (special tokens kept)
    "pad": "pad token",
    "zero": "zero embedding",
    "mean": "vocabulary mean embedding",
}
METHOD_LABELS = {
    "gradient_x_input": "gradient × input (the paper's)",
    "integrated_gradients": "integrated gradients (embedding layer)",
    "feature_ablation": "feature ablation (token → pad)",
}


@dataclass
class ShiftLimits:
    """Hard limits the UI reports when a request goes past them (they are not silently applied)."""

    max_prompt_tokens: int = 192  # attention maps and heatmaps stay readable; attribution stays about a minute
    max_new_tokens: int = 48  # each output token costs one attribution pass per method
    max_ig_steps: int = 256  # on Gemma-3-270M the completeness error about halves per doubling (bench_ig_baselines)
    max_page_size: int = 32  # output tokens per heatmap page


LIMITS = ShiftLimits()


@dataclass
class ShiftSettings:
    max_new_tokens: int = 8  # both models answer greedily with exactly this many tokens
    # the default methods are exact (no integration error) and quick; integrated gradients is one tick away: on
    # Gemma-3-270M the probability along its path jumps within a few hundredths of alpha, so it needs 64 steps
    # for a median completeness error under 5% (bench_ig_baselines), 4x the cost of the two defaults together
    methods: tuple[str, ...] = ("gradient_x_input", "feature_ablation")
    ig_steps: int = 64  # captum's Gauss-Legendre rule; the completeness error is reported, not assumed
    ig_baseline: str = "zero"  # IG_BASELINES; zero converged fastest on held-out prompts (bench_ig_baselines); ablation uses pad
    backward: str = "auto"  # the answer tokens' backward passes: vmap (one batched pass), loop, auto (see use_vmap)
    ig_internal_batch: int = 16  # interpolation steps per forward pass (memory vs speed)
    ablation_batch: int = 8  # perturbed prompts per forward pass in feature ablation
    target_chunk: int = 8  # answer tokens whose gradients share one batched backward pass (memory vs speed)
    completeness_tolerance: float = 0.05  # |sum(attr) - (f(x) - f(baseline))| relative to |f(x) - f(baseline)|
    density_scale: int = 10  # the paper's L: column-normalised scores scaled to 0..L and ceil'd
    density_threshold: int = 7  # the paper's b: scaled scores <= b are dropped
    density_p: int = 4  # the paper's L1/Lp density uses p = 4
    ffn_components: int = 3  # top principal components per layer (the paper reads up to hundreds; a UI needs few)
    ffn_top_tokens: int = 12  # vocabulary tokens listed per component
    suppress_eos: bool = True  # both answers keep the same length, so their attributions line up token by token

    def check(self, limits: ShiftLimits = LIMITS) -> "ShiftSettings":
        def rng(name: str, value, low, high) -> None:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
            if isinstance(low, int) and int(value) != value:
                raise ValueError(f"{name} must be a whole number between {low} and {high}, got {value!r}")

        rng("max_new_tokens", self.max_new_tokens, 1, limits.max_new_tokens)
        rng("ig_steps", self.ig_steps, 2, limits.max_ig_steps)
        rng("ig_internal_batch", self.ig_internal_batch, 1, 512)
        rng("ablation_batch", self.ablation_batch, 1, 512)
        rng("target_chunk", self.target_chunk, 1, 512)
        rng("completeness_tolerance", self.completeness_tolerance, 1e-6, 1.0)
        rng("density_scale", self.density_scale, 1, 1000)
        rng("density_threshold", self.density_threshold, 0, self.density_scale - 1)
        rng("density_p", self.density_p, 2, 16)
        rng("ffn_components", self.ffn_components, 1, 32)
        rng("ffn_top_tokens", self.ffn_top_tokens, 1, 100)
        if self.backward not in ("auto", "vmap", "loop"):
            raise ValueError(f"backward must be one of auto, vmap, loop, got {self.backward!r}")
        if self.ig_baseline not in IG_BASELINES:
            raise ValueError(f"ig_baseline must be one of {', '.join(IG_BASELINES)}, got {self.ig_baseline!r}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {', '.join(METHODS)}, got {list(self.methods)}")
        return self


def check_prompt_tokens(n_tokens: int, limits: ShiftLimits = LIMITS) -> None:
    if n_tokens > limits.max_prompt_tokens:
        raise ValueError(
            f"prompt is {n_tokens} tokens after the chat template; the behaviour-shift tab allows at most "
            f"{limits.max_prompt_tokens} (attribution runs one pass per output token and method). Shorten the prompt."
        )


def check_page(page: int, page_size: int, n_outputs: int, limits: ShiftLimits = LIMITS) -> int:
    """Validate a 1-based page of output tokens; returns the number of pages."""
    if not 1 <= page_size <= limits.max_page_size:
        raise ValueError(f"page_size must be between 1 and {limits.max_page_size}, got {page_size}")
    pages = max(1, -(-n_outputs // page_size))
    if not 1 <= page <= pages:
        raise ValueError(f"page must be between 1 and {pages}, got {page}")
    return pages
