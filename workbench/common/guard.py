"""Rewrites that fit the image model's text encoder and read as prompts (the guard before MMR).

Budget: the rewriter may generate a little past the encoder's window (CLIP: 77 tokens with its two special
tokens), then `fit_to_window` keeps the longest run of whole comma-separated phrases that the encoder sees, so
nothing is cut mid-word; an answer cut by the generation limit loses its unfinished last phrase.

Gate, with one reason per dropped rewrite (the status line counts them):
- "repeats a phrase": the same three words (lower-cased, punctuation ignored; `repeat_ngram` words where a rewriter's
  role asks for more) occur twice, or a word is said twice in
  a row within a phrase ("isolated isolated");
- "drifts from the prompt": embedding cosine with the user's prompt below `intent_floor`;
- "reads as a story": first or second person (I, me, my, we, our, you, your), a question mark, dialogue (a
  quoted sentence or "said"/"asked"),
  sentence openers that make a statement ("it's", "there is", "this is"), or past-tense narration
  (a pronoun followed by a verb in -ed, or was/were/had/did after a pronoun). A prompt is a list of phrases
  describing an image, not a narrative; adjectives in -ed ("weathered wood") pass because no pronoun precedes.

Invented words (before the gate): a small rewriter at sampling temperature coins words ("prosciutchetti",
"lamplakers"; about one rewrite in seven at 0.9). `drop_invented` removes each phrase after the steering prefix that
holds a word no English word list has (wordfreq's frequency 0, nor its singular), unless the user's prompt has it
(names and coinages of the user's own are theirs to keep). When the words that go on from the prefix's last phrase
hold one, nothing of the rewrite is kept: that phrase (an opener such as "with fine") would be left unfinished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

_WORD = re.compile(r"[a-z0-9']+")
_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|we|our|ours|us|you|your|yours)\b", re.I)
_QUESTION = re.compile(r"\?")
_DIALOGUE = re.compile(r"[\"“][^\"”]{3,}[\"”]|\b(said|asked|replied|whispered|shouted)\b", re.I)
_STATEMENT = re.compile(r"\b(it's|it is|there is|there are|there's|this is|that is|here is|you are|you're)\b", re.I)
_NARRATION = re.compile(r"\b(he|she|it|they|i|we|you)\s+(?:\w+ed|was|were|had|did|went|saw|felt|thought|came|"
                        r"found|knew|took|made|lay|sat|stood|ran|ate|slept|held|fell|got|left|told|began)\b", re.I)

REASONS = ("repeats a phrase", "drifts from the prompt", "reads as a story", "empty after fitting the window")


def repeated_phrase(text: str, n: int = 3) -> str | None:
    """The first word said twice in a row within a phrase ("isolated isolated"), else the first n-word sequence
    that occurs twice, or None."""
    for phrase in re.split(r"[,;.]", text.lower()):
        said = _WORD.findall(phrase)
        for a, b in zip(said, said[1:]):
            if a == b:
                return f"{a} {b}"
    words = _WORD.findall(text.lower())
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            return " ".join(gram)
        seen.add(gram)
    return None


def _known_in_english(word: str) -> bool:
    """In the word list, or a plural of a word in it (the list misses rare plurals: "sailboards", "treens")."""
    from wordfreq import zipf_frequency

    forms = [word] + ([word[:-1]] if word.endswith("s") else []) + ([word[:-2]] if word.endswith("es") else [])
    return any(zipf_frequency(f, "en") > 0 for f in forms)


def words_of(text: str) -> list[str]:
    """The words of `text` as the invented-word check splits them (wordfreq's tokenizer, lower case)."""
    from wordfreq import tokenize

    return tokenize(text, "en")


def invented_words(text: str, known: Iterable[str] = ()) -> list[str]:
    """Words of `text`, in order, that no English word list holds (wordfreq: frequency 0), other than `known`
    ones. Only letters are checked: "85mm" and "8k" are not words to look up; a possessive "'s" is ignored."""
    skip = {w.lower() for w in known}
    out = []
    for token in words_of(text):
        word = token[:-2] if token.endswith("'s") else token
        if len(word) < 3 or not word.isalpha() or word in skip or token in skip:
            continue
        if not _known_in_english(word):
            out.append(word)
    return out


def drop_invented(text: str, head: str = "", known: Iterable[str] = ()) -> tuple[str, list[str]]:
    """`text` without its phrases (comma-separated, after `head`, which is kept whole) that hold an invented word,
    and the invented words found. `known`: words never counted as invented (the user's prompt)."""
    known = set(known) | set(words_of(head))
    start = text[len(head):] if head and text.startswith(head) else text
    pieces = start.split(",")
    coined = [invented_words(p, known) for p in pieces]
    kept = [p for p, bad in zip(pieces, coined) if not bad]
    found = [w for bad in coined for w in bad]
    if not found:
        return text, []
    if head and start is not text and not start.lstrip().startswith(",") and coined[0]:
        # the model's first words go on from the head's last phrase (often an opener such as "with fine"), so
        # removing them would leave that phrase unfinished: nothing of this rewrite is kept (the sampler counts it
        # as empty)
        return head, found
    rest = ",".join(kept)
    if kept and kept[0] is pieces[0]:  # the first piece goes on from the head (or is the text's start) as it was
        return (head + rest).strip(), found
    rest = rest.strip().lstrip(",").strip()
    if not head or start is text:
        return rest, found
    return (head + ", " + rest) if rest else head, found


def story_reason(text: str) -> str | None:
    for pattern, why in ((_FIRST_PERSON, "first or second person"), (_QUESTION, "a question"),
                         (_DIALOGUE, "dialogue"), (_STATEMENT, "a statement"),
                         (_NARRATION, "past-tense narration")):
        match = pattern.search(text)
        if match:
            return f"{why} (“{match.group(0)}”)"
    return None


def fit_to_window(text: str, window: Any, cut_by_length: bool = False, max_words: int = 0) -> str:
    """The longest prefix of whole comma-separated phrases that `window` (a PromptWindow) sees whole and, with
    `max_words`, that has at most that many words (the first phrase is always kept). When the answer was cut by
    the generation limit, its last phrase is unfinished and is dropped (if others remain)."""
    phrases = [p.strip() for p in text.split(",")]
    phrases = [p for p in phrases if p]
    if cut_by_length and len(phrases) > 1:
        phrases = phrases[:-1]
    if max_words:
        kept_words, words = [], 0
        for phrase in phrases:
            words += len(phrase.split())
            if kept_words and words > max_words:
                break
            kept_words.append(phrase)
        phrases = kept_words
    if window is None or window.limit is None:
        return ", ".join(phrases)
    kept: list[str] = []
    for phrase in phrases:
        trial = ", ".join(kept + [phrase])
        if window.split(trial)[1]:
            break
        kept.append(phrase)
    if kept:
        return ", ".join(kept)
    # a first phrase longer than the window: keep the words the encoder sees
    return window.split(", ".join(phrases))[0].strip()


@dataclass
class GateResult:
    kept: list[int]  # indices into the candidates that passed
    dropped: dict[int, str]  # index -> reason

    def summary(self) -> str:
        if not self.dropped:
            return ""
        counts: dict[str, int] = {}
        for reason in self.dropped.values():
            key = reason.split(":")[0].split(" (")[0]
            counts[key] = counts.get(key, 0) + 1
        parts = ", ".join(f"{n} {why}" for why, n in counts.items())
        return f"the quality gate dropped {len(self.dropped)} of {len(self.dropped) + len(self.kept)} rewrites: {parts}"


def quality_gate(texts: Sequence[str], relevance: Sequence[float], intent_floor: float,
                 repeat_ngram: int = 3) -> GateResult:
    kept, dropped = [], {}
    for i, text in enumerate(texts):
        if not text.strip():
            dropped[i] = "empty after fitting the window"
            continue
        gram = repeated_phrase(text, repeat_ngram)
        if gram:
            dropped[i] = f"repeats a phrase (“{gram}”)"
            continue
        story = story_reason(text)
        if story:
            dropped[i] = f"reads as a story: {story}"
            continue
        if relevance[i] < intent_floor:
            dropped[i] = f"drifts from the prompt (similarity {relevance[i]:.2f} < {intent_floor:.2f})"
            continue
        kept.append(i)
    return GateResult(kept, dropped)
