"""Regenerate the cached examples every tab shows when no GPU is at hand (see README.md in this folder).

    python assets/examples/make_examples.py                  # fake profile: seconds, no weights needed
    python assets/examples/make_examples.py --profile offline --tabs t2i   # real SmolLM2 rewrites (slower)

Runs each tab's own flows (workbench/<tab>/flows.py) on CPU and writes assets/examples/<tab>/examples.json plus
small PNGs, labelled with the profile, models, commit, package versions and date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backends.provenance import package_versions  # noqa: E402
from workbench.context import build_context  # noqa: E402
from workbench.examples import CachedExample, save_examples  # noqa: E402

# two prompts of everyday words and one of the miniature world's (on a profile whose t2i role is a world model, the
# first two show what it does with words it does not know: the tab's note names them)
T2I_PROMPTS = ["a cat on a windowsill", "a lighthouse in a storm", "a yellow star and a blue square"]
T2V_PROMPTS = ["a dog running on a beach"]
SHIFT_PROMPTS = ["[[List three animals]] that live on a farm.", "[[Translate into French:]] good morning"]


def provenance(ctx, profile: str, roles: list[str], command: str) -> dict:
    prof = ctx.profile(profile)
    specs = {role: prof.spec(role) for role in roles}
    random = [r for r, s in specs.items() if s.random_weights or s.model_id.startswith(("tiny:", "fake/"))]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=str(ROOT)).stdout.strip() or "unknown"
    versions = package_versions()
    return {
        "profile": profile, "made": dt.date.today().isoformat(), "commit": commit, "command": command,
        "versions": ", ".join(f"{k} {versions.get(k)}" for k in ("python", "torch", "transformers", "diffusers")
                              if versions.get(k)),
        "models": {role: f"{s.backend}:{s.model_id}" for role, s in specs.items()},
        "note": (f"Random or fake weights for {', '.join(random)}: outputs are not meaningful; they show what the "
                 f"tab does, not what a real model would say.") if random else "",
    }


def make_t2i(ctx, profile: str, command: str) -> None:
    from workbench.t2i import flows

    examples, images = [], {}
    for k, prompt in enumerate(T2I_PROMPTS):
        inputs = flows.RewriterInputs(n=4, seed=0)
        render = flows.render_defaults(ctx, profile)  # the profile's size, steps and guidance, seed 0
        state, view = flows.refine(ctx, profile, prompt, inputs)
        state, _, view = flows.render(ctx, profile, state, [s.text for s in view.slots], render)
        columns, rows = view.results.columns, view.results.rows
        table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n" + "\n".join(
            "| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows)
        sections = [view.status, view.results.summary, table]
        sections += [f"**Candidate {i + 1}**: {slot.diff_markdown}\n\n{slot.flag}" for i, slot in enumerate(view.slots)]
        shown = []
        for j, (image, caption) in enumerate(view.results.grid):
            name = f"t2i_{k}_original.png" if j == 0 else f"t2i_{k}_candidate_{j}.png"
            images[name] = image
            shown.append((name, caption))
        examples.append(CachedExample(
            title=f"Refine and render: “{prompt}”",
            inputs={"prompt": prompt, "candidates": 4, "diversity": inputs.diversity, "rewrite seed": 0,
                    "steps": render.steps, "size": f"{render.size}x{render.size}", "image seed": 0},
            sections=[s for s in sections if s], images=shown))
    save_examples("t2i", examples, provenance(ctx, profile, ["chat", "embeddings", "t2i", "image_text"], command),
                  images)


def make_shift(ctx, profile: str, command: str) -> None:
    from workbench.shift import flows
    from workbench.shift.limits import METHOD_LABELS

    label = METHOD_LABELS["gradient_x_input"]
    examples = []
    for prompt in SHIFT_PROMPTS:
        result, view = flows.analyse(ctx, profile, prompt, "", False, 4, 4, [label], ["attribution", "attention"],
                                     label, 1, 8, "all", "all", "instruct", 0, 0)
        sections = [v for v in view.ordered() if isinstance(v, str) and v.strip()]
        examples.append(CachedExample(
            title=f"Base vs instruct: “{prompt}”",
            inputs={"prompt": prompt, "chat template": False, "answer tokens": 4, "method": label,
                    "views": "attribution, attention"},
            sections=sections))
    save_examples("shift", examples, provenance(ctx, profile, ["lm_base", "lm_instruct"], command))


def make_models(ctx, profile: str, command: str) -> None:
    from workbench import model_table as mt

    ctx.preload(profile=profile)
    records = mt.model_records(ctx, profile)
    columns = ["role", "model id", "weights", "backend", "device", "dtype", "load s", "memory MiB"]
    table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n" + "\n".join(
        "| " + " | ".join(str(r[c]).replace("|", "/") for c in columns) + " |" for r in records)
    examples = [CachedExample(title=f"Every role of the '{profile}' profile loaded",
                              inputs={"profile": profile, "action": "load every role"},
                              sections=[table, mt.memory_summary(ctx)])]
    save_examples("models", examples, provenance(ctx, profile, sorted(ctx.profile(profile).roles), command))


def make_t2v(ctx, profile: str, command: str) -> None:
    from PIL import Image

    from workbench.t2v import flows

    examples, images = [], {}
    for k, prompt in enumerate(T2V_PROMPTS):
        state, view = flows.evolve(ctx, profile, None, prompt, flows.EvolveInputs(rounds=2, population=2),
                                   flows.VideoInputs(), flows.RewriterInputs())
        table = "\n".join("| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in view.table)
        sections = [view.status, view.tree, table, view.candidate.scores]
        shown = []
        for label, path in (("original idea (same seed)", view.candidate.original_preview),
                            (f"best: {view.candidate.prompt[:80]}", view.candidate.preview)):
            if path:
                name = f"t2v_{k}_{len(shown)}.png"
                with Image.open(path) as gif:  # the preview's first frame; the tab plays the whole clip
                    images[name] = gif.convert("RGB")
                shown.append((name, label + " (first frame)"))
        examples.append(CachedExample(
            title=f"Evolve: “{prompt}”",
            inputs={"idea": prompt, "rounds": 2, "population": 2, "top-k": 3, "rewriter seed": 0},
            sections=[s for s in sections if s], images=shown))
    save_examples("t2v", examples, provenance(ctx, profile, ["chat", "embeddings", "t2v", "image_text"], command),
                  images)


def make_promptcam(ctx, profile: str, command: str) -> None:
    from workbench.promptcam import flows

    examples, images = [], {}
    for k, example in enumerate(flows.example_names()[:3]):
        state, view = flows.analyse(ctx, None, profile, None, example, None, "predicted")
        table = "| rank | class | probability |\n|---|---|---|\n" + "\n".join(
            f"| {r} | {c} | {p} |" for r, c, p in view.top_classes)
        shown = []
        for j, (image, caption) in enumerate(view.heads[:4]):
            images[f"pc_{k}_head_{j}.png"] = image
            shown.append((f"pc_{k}_head_{j}.png", caption))
        for key, image, caption in (("gradcam", view.grad_cam, view.grad_cam_caption or "Grad-CAM"),
                                    ("rollout", view.rollout, view.rollout_caption or "attention rollout")):
            if image is not None:
                images[f"pc_{k}_{key}.png"] = image
                shown.append((f"pc_{k}_{key}.png", caption))
        examples.append(CachedExample(title=f"Explain the predicted class: {example}",
                                      inputs={"example": example, "class": "predicted", "top-k": 3, "top traits": 4},
                                      sections=[view.summary, table], images=shown))
    save_examples("promptcam", examples, provenance(ctx, profile, ["promptcam"], command), images)


def make_promptor(ctx, profile: str, command: str) -> None:
    import tempfile

    from workbench.promptor.flows import PromptorService
    from workbench.promptor.store import SessionStore

    svc = PromptorService(ctx, SessionStore(tempfile.mkdtemp(prefix="promptor-examples-")))
    state, view = svc.new()
    for message in ["sentence completion", "ok", "ok", "ok", "ok", "ok", "ok", "ok",
                    "mention the place if the user names one", "run"]:
        for state, view in svc.send(state, message, profile):
            pass
    transcript = "\n\n".join(f"**{turn['role']}**: {turn['content']}" for turn in view.chat[-8:])
    examples = [CachedExample(
        title="From a starter task to a tested template: sentence completion",
        inputs={"messages": "sentence completion, ok ×7, one piece of feedback, run"},
        sections=[f"**Stage** {view.stage_label} ({view.step})", f"**Draft v{view.draft_version}**\n\n```\n{view.draft}\n```",
                  view.rounds, transcript])]
    save_examples("promptor", examples, provenance(ctx, profile, ["chat", "embeddings", "lm_base"], command))


MAKERS = {"t2i": make_t2i, "shift": make_shift, "models": make_models, "t2v": make_t2v, "promptcam": make_promptcam,
          "promptor": make_promptor}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="fake", help="profile to compute with (default: fake)")
    parser.add_argument("--tabs", default=",".join(MAKERS), help=f"comma-separated, from {', '.join(MAKERS)}")
    args = parser.parse_args(argv)
    ctx = build_context(profile=args.profile, device="cpu")
    command = "python assets/examples/make_examples.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for tab in args.tabs.split(","):
        MAKERS[tab.strip()](ctx, args.profile, command.strip())
        print(f"wrote assets/examples/{tab.strip()}/", flush=True)


if __name__ == "__main__":
    main()
