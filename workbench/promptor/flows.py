"""The Promptor flows both front ends call (`PromptorService` methods): each takes the per-user state (a JSON-able dict) plus inputs and
returns the new state and a `PromptorView`; chat replies are generators that stream (state, view) pairs while
the agent's chat model is held by the model manager for the whole reply. Every returned state is saved under its
resume code."""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from backends.base import GenerationSettings, _check_range
from workbench.common.choice import ChatChoice
from workbench.jobs import Job
from workbench.models import ManagedModel
from workbench.promptor import agent, converse, export, metrics, template as tpl
from workbench.promptor.agent import PromptorView, Turn
from workbench.promptor.interpret import LLMInterpreter, is_capable
from workbench.promptor.rules import LocalInterpreter
from workbench.promptor.store import SessionStore
from workbench.text import escape_markdown
from workbench.storage import export_folder

RANDOM_NOTE = "random weights: outputs are not meaningful"


@dataclass
class PromptorSettings:
    reply_tokens: int = 64  # the model only phrases a one-sentence acknowledgement; our text carries the step
    polish_tokens: int = 320  # a template is 80-250 words
    polish: bool = True  # ask the chat model to rewrite each draft (validated; ours is kept when it breaks one)
    temperature: float = 0.7
    seed: int = 0  # fixed so a study can replay a conversation
    target_tokens: int = 40  # text-entry outputs are a few words
    history: int = 4  # earlier messages the agent model sees (small models have short contexts)

    def check(self) -> "PromptorSettings":
        _check_range("reply_tokens", self.reply_tokens, 1, 1024, integer=True)
        _check_range("polish_tokens", self.polish_tokens, 16, 2048, integer=True)
        _check_range("temperature", self.temperature, 0.0, 2.0)
        _check_range("seed", self.seed, 0, 2**31 - 1, integer=True)
        _check_range("target_tokens", self.target_tokens, 1, 512, integer=True)
        _check_range("history", self.history, 0, 20, integer=True)
        return self


Result = tuple[dict[str, Any], PromptorView]


def agent_conversation(state: dict, turn: Turn, history: int) -> list[dict[str, str]]:
    """What the agent's chat model sees: the parent prompt and the fields we hold (system), a few recent messages,
    then the one thing to do now."""
    known = "\n".join(f"- {name}: {value}" for name, value in state["fields"].items() if value)
    system = (f"{state['parent_prompt']}\n\nCurrent step: {agent.STAGE_LABELS[state['stage']]}."
              + (f"\nWhat the designer told you so far:\n{known}" if known else ""))
    messages = [{"role": "system", "content": system}]
    recent = [m for m in state["messages"][:-1] if m["role"] in ("designer", "agent") and m.get("status") != "streaming"]
    for m in recent[-history:] if history else []:
        text = m["content"] if m["role"] == "designer" else (m.get("model_text") or m.get("appendix") or "")
        if text.strip():
            messages.append({"role": "user" if m["role"] == "designer" else "assistant", "content": text[:600]})
    last = f"Designer: {turn.designer_text}\n\n" if turn.designer_text and turn.kind == "phrase" else ""
    messages.append({"role": "user", "content": f"{last}Instruction: {turn.instruction}"})
    return messages


def rounds_markdown(state: dict, last: int = 2) -> str:
    """The last test rounds: outputs of each draft side by side per example, with similarity to the ideal output
    and perplexity under the coherence LM per example and averaged."""
    if not state["rounds"]:
        return "No test round yet."
    esc = escape_markdown  # one line per cell: a table row must not break
    parts = []
    for rnd in state["rounds"][-last:][::-1]:
        versions = rnd["versions"]
        head = "| # | input | ideal output | " + " | ".join(f"draft v{v}" for v in versions) + " |"
        rows = [head, "|" + "---|" * (3 + len(versions))]
        for i, ex in enumerate(rnd["examples"]):
            inputs = "<br>".join(f"{esc(k)}: {esc(v)}" for k, v in ex["values"].items())
            cells = []
            for v in versions:
                m = rnd["metrics"][str(v)]
                sim, ppl = m["similarity"][i], m["perplexity"][i]
                cells.append(f"{esc(rnd['outputs'][str(v)][i]) or '*(empty)*'}<br>*sim {_fmt(sim)} · ppl {_fmt(ppl, 1)}*")
            rows.append(f"| {i + 1} | {inputs} | {esc(ex.get('reference', '')) or '*(none)*'} | " + " | ".join(cells) + " |")
        means = " | ".join(f"**sim {_fmt(rnd['metrics'][str(v)]['mean_similarity'])} · ppl "
                           f"{_fmt(rnd['metrics'][str(v)]['mean_perplexity'], 1)}**" for v in versions)
        rows.append(f"| mean | | | {means} |")
        notes = [f"**Test round {rnd['round']}** on {esc(rnd['target'])}. sim = cosine similarity to the ideal output "
                 f"({esc(rnd['metric_models']['similarity'])}, higher is closer); ppl = perplexity under "
                 f"{esc(rnd['metric_models']['coherence'])} (lower is more coherent)."]
        notes += [f"⚠️ {esc(n)}" for n in rnd.get("notes", [])]
        parts.append("\n\n".join(notes) + "\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


class PromptorService:
    """Promptor's flows over the app's models (`ctx`) and a session store."""

    def __init__(self, ctx: Any, store: SessionStore | None = None):
        self.ctx = ctx
        self.store = store or SessionStore()
        self._local: dict[Any, LocalInterpreter] = {}  # per embeddings model: the corpus is embedded once
        # per conversation code: one reply at a time (the lock, and how many sends hold or wait for it; the entry
        # goes when the last one ends, so the table holds only conversations with a reply under way)
        self._replies: dict[str, list] = {}
        self._replies_lock = threading.Lock()

    # ------------------------------------------------------------------ sessions
    def _out(self, state: dict) -> Result:
        self.store.save(state)
        return state, agent.view(state, rounds_markdown(state))

    def _view(self, state: dict) -> PromptorView:
        return agent.view(state, rounds_markdown(state))

    def _state(self, state: Any) -> dict:
        if not state:
            return agent.new_state()
        return copy.deepcopy(agent.check_state(state))

    def new(self, parent_prompt: str | None = None, starter: str | None = None) -> Result:
        state = agent.new_state(parent_prompt)
        if starter:
            agent.load_starter(state, starter)
        return self._out(state)

    def resume(self, code: Any) -> Result:
        return self._out(agent.recover(self.store.load(code)))

    def view(self, state: Any) -> PromptorView:
        """What the tab shows for `state`, without saving it (a page redraw is not a change)."""
        return self._view(self._state(state))

    def current(self, state: Any) -> Result:
        return self._out(self._state(state))

    # ------------------------------------------------------------------ chat
    def send(self, state: Any, message: Any, profile_name: str | None, agent_choice: ChatChoice | None = None,
             target_choice: ChatChoice | None = None, settings: PromptorSettings | None = None) -> Iterator[Result]:
        """One designer message and the agent's streamed reply. A message sent while a reply of the same
        conversation streams waits for it to end, then answers the conversation as that reply saved it (the page
        sent its state from before), so neither message nor reply is lost."""
        settings = (settings or PromptorSettings()).check()
        state = self._state(state)
        text, _ = agent.check_message(message)
        code = state["code"]
        with self._replies_lock:
            entry = self._replies.setdefault(code, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield from self._send(self._newest(state), message, text, profile_name, agent_choice, target_choice,
                                      settings)
        finally:
            with self._replies_lock:
                entry[1] -= 1
                if not entry[1]:
                    self._replies.pop(code, None)

    def _newest(self, state: dict) -> dict:
        """`state`, or the copy saved under its code when that one holds more of the conversation."""
        try:
            saved = self.store.load(state["code"])
        except ValueError:
            return state
        return saved if len(saved["messages"]) > len(state["messages"]) else state

    def _send(self, state: dict, message: Any, text: str, profile_name: str | None, agent_choice: ChatChoice | None,
              target_choice: ChatChoice | None, settings: PromptorSettings) -> Iterator[Result]:
        profile = self.ctx.profile(profile_name)
        capable = is_capable(profile, agent_choice)
        interpretation = self.interpreter(profile_name, agent_choice, settings).interpret(
            text, converse.context(state))
        turn = agent.apply_message(state, message, interpretation, phrase=capable)
        if not capable:
            settings = dataclasses.replace(settings, polish=False)  # the profile's chat model does not write
        yield from self._reply(state, turn, profile_name, agent_choice, target_choice, settings)

    def interpreter(self, profile_name: str | None, agent_choice: ChatChoice | None = None,
                    settings: PromptorSettings | None = None) -> Any:
        """The message interpreter for this profile and agent: the LLM one on a capable chat backend (falling back
        to the local one), else the local one (rules + the profile's sentence embeddings, MiniLM offline)."""
        profile = self.ctx.profile(profile_name)
        local = self.local_interpreter(profile_name)
        if not is_capable(profile, agent_choice):
            return local
        choice = (agent_choice or ChatChoice()).check()
        spec = choice.spec(profile)
        seed = (settings or PromptorSettings()).seed

        def generate(conversation: list[dict[str, str]]) -> str:
            gen = GenerationSettings(max_new_tokens=400, do_sample=False, seed=seed)
            with self.ctx.manager.use(spec) as chat:
                return chat.generate([conversation], gen)[0][0].text

        return LLMInterpreter(generate, local, choice.describe(profile))

    def local_interpreter(self, profile_name: str | None) -> LocalInterpreter:
        spec = self.ctx.profile(profile_name).spec(metrics.SIMILARITY_ROLE)
        if spec not in self._local:
            embedder = ManagedModel(self.ctx.manager, spec)
            self._local[spec] = LocalInterpreter(lambda texts: embedder.embed(list(texts)).vectors,
                                                 model_name=spec.model_id)
        return self._local[spec]

    def retry(self, state: Any, profile_name: str | None, agent_choice: ChatChoice | None = None,
              target_choice: ChatChoice | None = None, settings: PromptorSettings | None = None) -> Iterator[Result]:
        """Ask again for a reply the backend broke off (the partial one stays in the transcript)."""
        settings = (settings or PromptorSettings()).check()
        state = self._state(state)
        turn = agent.retry_turn(state)
        yield from self._reply(state, turn, profile_name, agent_choice, target_choice, settings)

    def _reply(self, state: dict, turn: Turn, profile_name: str | None, agent_choice: ChatChoice | None,
               target_choice: ChatChoice | None, settings: PromptorSettings) -> Iterator[Result]:
        if turn.run_test:
            try:
                self._run_round(state, profile_name, target_choice, settings)
                appendix = (f"Test round {state['rounds'][-1]['round']} done: outputs side by side in the side "
                            f"panel.\n\n{rounds_markdown(state, last=1)}\n\n" + agent.test_prompt(state))
            except ValueError as exc:
                appendix = f"⚠️ The test round could not run: {agent.escape_md(str(exc))}\n\n" + agent.test_prompt(state)
            lead = turn.lead or turn.appendix
            agent._agent(state, "", (lead + "\n\n" if lead else "") + appendix, kind="test-round")
            yield self._out(state)
            return
        msg = agent.begin_reply(state, turn)
        yield self._out(state)  # saved: the designer's message survives a reload during the reply
        if turn.kind == "none" or (turn.kind == "polish" and not settings.polish):
            agent.end_reply(state, turn, msg)
            yield self._out(state)
            return
        choice = (agent_choice or ChatChoice()).check()
        gen = GenerationSettings(
            max_new_tokens=settings.polish_tokens if turn.kind == "polish" else settings.reply_tokens,
            do_sample=settings.temperature > 0, temperature=settings.temperature or 0.7,
            seed=settings.seed + state["turn"], repetition_penalty=1.1)
        error = None
        try:
            spec = choice.spec(self.ctx.profile(profile_name))
            conversation = agent_conversation(state, turn, settings.history)
            # the model stays pinned (and its device queue held) until the reply ends, breaks off or is closed
            for piece in self.ctx.manager.stream(spec, lambda chat: chat.stream(conversation, gen)):
                msg["model_text"] = msg.get("model_text", "") + piece
                yield state, self._view(state)
        except ValueError:
            raise  # bad settings or choice: the wiring layer shows the message; nothing was streamed
        except Exception as exc:  # the backend broke off: keep the partial reply, offer Retry
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        agent.end_reply(state, turn, msg, error)
        yield self._out(state)

    # ------------------------------------------------------------------ side panel
    def jump_back(self, state: Any, target: str) -> Result:
        state = self._state(state)
        return self._out(agent.jump_back(state, target))

    def edit_fields(self, state: Any, values: dict[str, Any]) -> Result:
        state = self._state(state)
        return self._out(agent.edit_fields(state, values))

    def edit_draft(self, state: Any, text: Any) -> Result:
        state = self._state(state)
        return self._out(agent.edit_draft(state, text))

    def set_parent_prompt(self, state: Any, text: Any) -> Result:
        state = self._state(state)
        return self._out(agent.set_parent_prompt(state, text))

    def set_examples(self, state: Any, text: Any) -> Result:
        state = self._state(state)
        return self._out(agent.set_examples(state, text))

    def finalise(self, state: Any) -> Result:
        state = self._state(state)
        return self._out(agent.finalise(state))

    def start_blind(self, state: Any, seed: Any = 0) -> Result:
        state = self._state(state)
        return self._out(agent.start_blind(state, int(seed or 0)))

    def mark_blind(self, state: Any, example: Any, best: Any, worst: Any = None) -> Result:
        state = self._state(state)
        return self._out(agent.mark_blind(state, example, best, worst))

    def export_files(self, state: Any, folder: str | None = None) -> dict[str, str]:
        state = self._state(state)
        folder = folder or export_folder("promptor-export-")
        return {k: str(v) for k, v in export.write_files(state, folder).items()}

    # ------------------------------------------------------------------ test rounds
    def run_test_round(self, state: Any, profile_name: str | None, target_choice: ChatChoice | None = None,
                       versions: Sequence[int] | None = None, settings: PromptorSettings | None = None,
                       job: Job | None = None) -> Result:
        settings = (settings or PromptorSettings()).check()
        state = self._state(state)
        self._run_round(state, profile_name, target_choice, settings, versions, job)
        return self._out(state)

    def _run_round(self, state: dict, profile_name: str | None, target_choice: ChatChoice | None,
                   settings: PromptorSettings, versions: Sequence[int] | None = None, job: Job | None = None) -> dict:
        """Fill each compared draft with each example, run the target chat model (greedy, one batch), score."""
        job = job or Job.none()
        drafts = {d["version"]: d for d in state["drafts"]}
        if not drafts:
            raise ValueError("there is no draft to test yet: answer the questions first")
        if versions:
            chosen = [int(v) for v in dict.fromkeys(versions)]
            unknown = [v for v in chosen if v not in drafts]
            if unknown:
                raise ValueError(f"no draft v{unknown[0]}; drafts are " + ", ".join(f"v{v}" for v in drafts))
        else:
            chosen = sorted(drafts)[-2:]  # the current draft and the one before it
        if len(chosen) > agent.MAX_COMPARE:
            raise ValueError(f"compare at most {agent.MAX_COMPARE} drafts in one round, got {len(chosen)}")
        examples = state["examples"]
        if not examples:
            raise ValueError("there are no test examples: add them in the side panel (one per line: "
                             + agent.examples_header(state) + ")")
        prompts: dict[int, list[str]] = {}
        for v in chosen:
            prompts[v] = [tpl.fill(drafts[v]["template"], ex["values"], where=f"draft v{v}, example {i + 1}")
                          for i, ex in enumerate(examples)]
        profile = self.ctx.profile(profile_name)
        choice = (target_choice or ChatChoice()).check()
        gen = GenerationSettings(max_new_tokens=settings.target_tokens, do_sample=False, seed=settings.seed)
        conversations = [[{"role": "user", "content": p}] for v in chosen for p in prompts[v]]
        job.update("test round: generate", 0, len(conversations), choice.describe(profile))
        with self.ctx.manager.use(choice.spec(profile)) as chat:
            generations = chat.generate(conversations, gen)
        job.update("test round: generate", len(conversations), len(conversations))
        outputs: dict[str, list[str]] = {}
        k = 0
        for v in chosen:
            outputs[str(v)] = [generations[k + i][0].text for i in range(len(examples))]
            k += len(examples)
        scores, metric_models, notes = self._score(profile, outputs, [ex.get("reference", "") for ex in examples], job)
        provenance = generations[0][0].provenance if generations and generations[0] else None
        if provenance is not None and provenance.random_weights:
            notes.insert(0, f"target model: {RANDOM_NOTE}")
        if not any(ex.get("reference") for ex in examples):
            notes.append("no ideal outputs given: similarity is n/a (add them after the last '|')")
        return agent.record_round(state, {
            "versions": chosen, "templates": {str(v): drafts[v]["template"] for v in chosen},
            "examples": copy.deepcopy(examples), "prompts": {str(v): prompts[v] for v in chosen},
            "outputs": outputs, "metrics": scores, "metric_models": metric_models, "notes": notes,
            "target": choice.describe(profile), "settings": vars(gen),
            "provenance": provenance.to_dict() if provenance is not None else None,
        })

    def _score(self, profile: Any, outputs: dict[str, list[str]], references: list[str],
               job: Job) -> tuple[dict[str, dict], dict[str, str], list[str]]:
        notes: list[str] = []
        emb_spec = profile.spec(metrics.SIMILARITY_ROLE)
        lm_spec = profile.spec(metrics.COHERENCE_ROLE) if metrics.COHERENCE_ROLE in profile.roles else None
        embedder = ManagedModel(self.ctx.manager, emb_spec)
        job.update("test round: similarity", 0, 2)
        sims = {v: metrics.similarity(embedder, outs, references) for v, outs in outputs.items()}
        if embedder.random_weights:
            notes.append(f"similarity model: {RANDOM_NOTE}")
        ppls: dict[str, list[float | None]] = {v: [None] * len(outs) for v, outs in outputs.items()}
        lm_name = "n/a (the profile has no lm_base role)"
        job.update("test round: perplexity", 1, 2)
        if lm_spec is not None:
            lm_name = f"{lm_spec.model_id} ({metrics.COHERENCE_ROLE} role)"
            if "white_box" in self.ctx.manager.capabilities(lm_spec).kinds:
                with self.ctx.manager.use(lm_spec) as lm:
                    ppls = {v: metrics.perplexity(lm, outs) for v, outs in outputs.items()}
                    if lm.random_weights:
                        notes.append(f"coherence model: {RANDOM_NOTE}")
            else:
                lm_name = f"n/a ({lm_spec.backend} is not a white-box LM)"
        scores = {}
        for v in outputs:
            scores[v] = metrics.Scores(sims[v], ppls[v], metrics._mean(sims[v]), metrics._mean(ppls[v])).to_dict()
        return scores, {"similarity": f"{emb_spec.model_id} ({metrics.SIMILARITY_ROLE} role)",
                        "coherence": lm_name}, notes
