"""Where the instruction sits in the prompt, in tokens: found from the chat template (the template is
rendered around a sentinel and character offsets are mapped to tokens) or marked by the user with [[...]].

The instruction span is what the behaviour-shift paper's "instruction recognition" measures attribution
and attention against (Wu et al., NAACL'24; captum #1451 and Inseq #285 ask for template-aware spans).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MARK_OPEN, MARK_CLOSE = "[[", "]]"
_SENTINEL = "WBINSTRUCTIONSENTINEL7f3a"  # no spaces or markup, so templates that trim or escape keep it whole


@dataclass
class PromptLayout:
    text: str  # exactly what the models see (after the chat template; BOS is added by the tokenizer)
    input_ids: list[int]
    tokens: list[str]  # display form of each token, one per id
    instruction_mask: list[bool]  # token overlaps the instruction characters
    special_mask: list[bool]  # BOS and other special tokens (no characters of their own)
    instruction_chars: tuple[int, int]  # [start, end) in `text`
    source: str  # "chat template", "user-marked" or "user-marked inside the chat template"

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    def instruction_tokens(self) -> list[str]:
        return [t for t, m in zip(self.tokens, self.instruction_mask) if m]


def parse_marks(prompt: str) -> tuple[str, tuple[int, int] | None]:
    """Remove one [[...]] mark; return the clean text and the marked character span (None when unmarked)."""
    opens, closes = prompt.count(MARK_OPEN), prompt.count(MARK_CLOSE)
    if opens == 0 and closes == 0:
        return prompt, None
    if opens != 1 or closes != 1:
        raise ValueError(f"prompt must mark the instruction with exactly one {MARK_OPEN}...{MARK_CLOSE} pair, "
                         f"found {opens} '{MARK_OPEN}' and {closes} '{MARK_CLOSE}'")
    start = prompt.index(MARK_OPEN)
    end = prompt.index(MARK_CLOSE)
    if end < start:
        raise ValueError(f"prompt: '{MARK_CLOSE}' comes before '{MARK_OPEN}'")
    inner = prompt[start + len(MARK_OPEN):end]
    if not inner.strip():
        raise ValueError(f"prompt: the marked instruction {MARK_OPEN}{MARK_CLOSE} is empty")
    clean = prompt[:start] + inner + prompt[end + len(MARK_CLOSE):]
    return clean, (start, start + len(inner))


def render_with_template(tokenizer: Any, content: str, system: str = "") -> tuple[str, int]:
    """The chat-template text for one user turn and where `content` starts in it (found via a sentinel)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("this tokenizer has no chat template; turn off 'use chat template' and mark the "
                         f"instruction with {MARK_OPEN}...{MARK_CLOSE}")

    def render(user: str) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    with_sentinel = render(_SENTINEL)
    if with_sentinel.count(_SENTINEL) != 1:
        raise ValueError("the chat template does not place the user message once; mark the instruction with "
                         f"{MARK_OPEN}...{MARK_CLOSE} and turn off 'use chat template'")
    start = with_sentinel.index(_SENTINEL)
    text = with_sentinel.replace(_SENTINEL, content)
    if render(content) != text:
        raise ValueError("the chat template changes the message text (it trims or escapes it); mark the instruction "
                         f"with {MARK_OPEN}...{MARK_CLOSE} and turn off 'use chat template'")
    return text, start


def _offsets(tokenizer: Any, text: str, add_special: bool) -> tuple[list[int], list[tuple[int, int]], list[bool]]:
    """Token ids, character offsets and special flags; decodes prefixes where the tokenizer has no offsets."""
    special_ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    try:
        enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    except (NotImplementedError, ValueError, TypeError):  # slow tokenizers have no offset mapping
        ids = list(tokenizer(text, add_special_tokens=add_special)["input_ids"])
        offsets, consumed = [], 0
        for i, tid in enumerate(ids):
            if tid in special_ids:
                offsets.append((consumed, consumed))
                continue
            prefix = tokenizer.decode([t for t in ids[: i + 1] if t not in special_ids])
            end = min(len(text), len(prefix))
            offsets.append((consumed, end))
            consumed = end
    special = [tid in special_ids and a == b for tid, (a, b) in zip(ids, offsets)]
    return ids, offsets, special


def display_token(tokenizer: Any, token_id: int) -> str:
    text = tokenizer.decode([token_id])
    text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text if text.strip() else repr(text)[1:-1] or "∅"


def build_layout(tokenizer: Any, prompt: str, use_chat_template: bool = True, system: str = "") -> PromptLayout:
    """Tokenise the prompt as the models will see it and flag the instruction tokens.

    With the chat template, the user message is the instruction unless part of it is marked with [[...]].
    Without it, the prompt is fed as plain text and the instruction must be marked."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty text")
    clean, marked = parse_marks(prompt)
    if use_chat_template:
        stripped = clean.strip()
        lead = len(clean) - len(clean.lstrip())
        text, start = render_with_template(tokenizer, stripped, system)
        if marked is None:
            span, source = (start, start + len(stripped)), "chat template"
        else:
            a = min(max(marked[0] - lead, 0), len(stripped))
            b = min(max(marked[1] - lead, 0), len(stripped))
            span, source = (start + a, start + b), "user-marked inside the chat template"
    else:
        if marked is None:
            raise ValueError(f"without the chat template, mark the instruction in the prompt with "
                             f"{MARK_OPEN}...{MARK_CLOSE}")
        text, span, source = clean, marked, "user-marked"
    bos = tokenizer.bos_token
    add_special = not (bos and text.startswith(bos))
    ids, offsets, special = _offsets(tokenizer, text, add_special)
    mask = [not sp and b > a and a < span[1] and b > span[0] for (a, b), sp in zip(offsets, special)]
    if not any(mask):
        raise ValueError("prompt: the instruction span covers no token; mark a longer instruction")
    tokens = [display_token(tokenizer, t) for t in ids]
    return PromptLayout(text=text, input_ids=ids, tokens=tokens, instruction_mask=mask, special_mask=special,
                        instruction_chars=span, source=source)
