"""The refinement tree: each round refines one prompt into candidates; picking a candidate and refining
further opens a child round. Users can go back to any round and branch from it again. Plain data
(JSON-serialisable) so it lives in gr.State / st.session_state and in batch outputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.text import escape_markdown


@dataclass
class Round:
    id: int
    parent: int | None  # the round whose candidate was picked; None for the root
    parent_pick: int | None  # which candidate of the parent round was refined
    prompt: str  # the prompt this round refined (the user's own at the root)
    candidates: list[str] = field(default_factory=list)  # as shown (user edits included)
    candidate_info: list[dict[str, Any]] = field(default_factory=list)  # Candidate.to_dict() per slot
    picked: int | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)  # ImageScores.to_dict() per rendered candidate
    rewriter: str = ""


@dataclass
class RefinementSession:
    root_prompt: str
    rounds: list[Round] = field(default_factory=list)
    current: int = 0

    # ------------------------------------------------------------------ building the tree
    @classmethod
    def start(cls, prompt: str, candidates: list[dict[str, Any]], rewriter: str = "") -> "RefinementSession":
        session = cls(root_prompt=prompt)
        session.rounds.append(Round(0, None, None, prompt, [c["text"] for c in candidates], list(candidates),
                                    rewriter=rewriter))
        return session

    def round(self, round_id: int | None = None) -> Round:
        rid = self.current if round_id is None else round_id
        if not isinstance(rid, int) or not 0 <= rid < len(self.rounds):
            raise ValueError(f"round must be between 0 and {len(self.rounds) - 1}, got {round_id!r}")
        return self.rounds[rid]

    def set_candidates(self, texts: list[str]) -> None:
        """Record the user's edits to the current round's candidates."""
        rnd = self.round()
        for i, text in enumerate(texts[: len(rnd.candidates)]):
            if text != rnd.candidates[i]:
                rnd.candidates[i] = text
                if i < len(rnd.candidate_info):
                    rnd.candidate_info[i] = {**rnd.candidate_info[i], "text": text, "source": "edited"}

    def pick(self, index: int) -> str:
        rnd = self.round()
        if not isinstance(index, int) or not 0 <= index < len(rnd.candidates):
            raise ValueError(f"pick must be between 1 and {len(rnd.candidates)}, got {index + 1 if isinstance(index, int) else index!r}")
        rnd.picked = index
        return rnd.candidates[index]

    def refine_further(self, index: int, candidates: list[dict[str, Any]], rewriter: str = "") -> Round:
        """Pick candidate `index` of the current round and add a child round refining it."""
        prompt = self.pick(index)
        child = Round(len(self.rounds), self.current, index, prompt, [c["text"] for c in candidates],
                      list(candidates), rewriter=rewriter)
        self.rounds.append(child)
        self.current = child.id
        return child

    def go_back(self, round_id: int) -> Round:
        rnd = self.round(round_id)
        self.current = rnd.id
        return rnd

    def path(self, round_id: int | None = None) -> list[int]:
        """Round ids from the root to `round_id`."""
        out = []
        rnd: Round | None = self.round(round_id)
        while rnd is not None:
            out.append(rnd.id)
            rnd = self.rounds[rnd.parent] if rnd.parent is not None else None
        return out[::-1]

    # ------------------------------------------------------------------ display and storage
    def tree_markdown(self) -> str:
        children: dict[int | None, list[Round]] = {}
        for rnd in self.rounds:
            children.setdefault(rnd.parent, []).append(rnd)
        lines: list[str] = []

        def walk(rnd: Round, depth: int) -> None:
            marker = " **← current**" if rnd.id == self.current else ""
            via = f" (from candidate {rnd.parent_pick + 1} of round {rnd.parent})" if rnd.parent is not None else ""
            short = escape_markdown(rnd.prompt if len(rnd.prompt) <= 80 else rnd.prompt[:77] + "...")
            picked = f"; picked {rnd.picked + 1}" if rnd.picked is not None else ""
            indent = "\u00a0" * 6 * depth + ("↳ " if depth else "• ")  # explicit: Markdown list nesting is fragile
            lines.append(f"{indent}round {rnd.id}{via}: “{short}” → {len(rnd.candidates)} candidates"
                         f"{picked}{marker}")
            for child in children.get(rnd.id, []):
                walk(child, depth + 1)

        for root in children.get(None, []):
            walk(root, 0)
        return "  \n".join(lines)  # hard line breaks

    def round_choices(self) -> list[tuple[str, int]]:
        return [(f"round {r.id}: {r.prompt[:50]}", r.id) for r in self.rounds]

    def to_dict(self) -> dict[str, Any]:
        return {"root_prompt": self.root_prompt, "current": self.current, "rounds": [asdict(r) for r in self.rounds]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RefinementSession":
        return cls(root_prompt=data["root_prompt"], current=int(data["current"]),
                   rounds=[Round(**r) for r in data["rounds"]])
