"""The note for a miniature-world model (issue 20), shared by the T2I and T2V tabs: the images or videos come from
the world, which knows only its own words, and the words of each prompt outside them are named, never silently
ignored.

A profile marks its `t2i` or `t2v` role as a world model with the option `world: true` (assets/profiles.yaml): data
on the role, not a guess from the model's path, so a world model kept anywhere gets the note and nothing else does."""

from __future__ import annotations

from typing import Any, Sequence

from workbench.text import escape_markdown

WORLD_OPTION = "world"
CAVEAT_OPTION = "world_caveat"


def is_world_model(spec: Any) -> bool:
    """Whether the role's model is a miniature-world model (its profile says `world: true`)."""
    return spec.option(WORLD_OPTION, False) is True


def known_words_summary() -> str:
    """What the world knows, in one sentence (from assets/world/vocabulary.yaml)."""
    from workbench.world import load_vocabulary

    v = load_vocabulary()
    return (f"shapes ({', '.join(v.shapes)}), colours ({', '.join(v.colours)}), sizes ({', '.join(v.sizes)}), "
            f"the nine places of a 3×3 grid (“in the top left” … “in the bottom right”), relations (“above”, “to the "
            f"left of” …), finishes ({', '.join(v.finishes)}), backgrounds ({', '.join(v.backgrounds)}), effects "
            f"({', '.join(v.effects.values())}) and styles ({', '.join(v.styles)})")


def unknown_by_prompt(prompts: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(label, the words of its prompt outside the world's vocabulary) for each (label, prompt), in order."""
    from workbench.world import unknown_words

    return [(label, unknown_words(text)) for label, text in prompts]


def world_note(spec: Any, prompts: Sequence[tuple[str, str]], what: str = "Images") -> str:
    """Markdown for the tab: "" unless `spec` (the profile's t2i or t2v role) is a world model; else that `what`
    ("Images", "Videos") come from the miniature world, what it knows, and for each labelled prompt the words it does
    not know."""
    if not is_world_model(spec):
        return ""
    drawn = "videos" if what == "Videos" else "scenes"
    lines = [f"🧩 **{what} come from the miniature world** (model {escape_markdown(spec.model_id)}): a model trained "
             f"on procedurally drawn {drawn} of 1–3 simple objects. It knows only the world's words: "
             f"{known_words_summary()}."]
    caveat = spec.option(CAVEAT_OPTION, "")
    if caveat:  # what the model gets wrong, measured (the profile says it as data: options.world_caveat)
        lines.append(f"⚠️ {escape_markdown(str(caveat))}")
    unknown = [(label, words) for label, words in unknown_by_prompt(prompts) if words]
    if unknown:
        named = "; ".join(f"{escape_markdown(label)}: " + ", ".join(f"“{escape_markdown(w)}”" for w in words)
                          for label, words in unknown)
        lines.append(f"Words it does not know (it was never trained on them, so they do not shape the "
                     f"{what.lower().rstrip('s')}): "
                     f"{named}.")
    elif prompts:
        lines.append("Every word of " + ("the prompt" if len(prompts) == 1 else "these prompts") + " is a world word.")
    return "\n\n".join(lines)


def profile_world_note(ctx: Any, profile_name: str | None, prompts: Sequence[tuple[str, str]],
                       role: str = "t2i") -> str:
    """`world_note` for the profile's `role` ("t2i" or "t2v"; "" when the profile has none or it is not a world
    model)."""
    profile = ctx.profile(profile_name)
    if role not in profile.roles:
        return ""
    return world_note(profile.spec(role), prompts, "Videos" if role == "t2v" else "Images")
