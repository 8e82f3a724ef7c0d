"""One designer message, already interpreted (`interpret.Interpretation`), applied to the stage machine: fields
filled in any order, corrections overwrite, examples go to the examples table, feedback becomes a rule, requests
to move on jump ahead (unanswered fields take the starter task's suggestion or a stated default, and the reply
names them), questions get our answer, off-topic text and injection attempts are turned back. Returns the
`agent.Turn` the reply must do. No model here: the flow runs the interpreter and the reply."""

from __future__ import annotations

from typing import Any

from workbench.promptor import agent, speech, template as tpl
from workbench.promptor.agent import Turn, escape_md
from workbench.promptor.interpret import Interpretation, context_of
from workbench.promptor.tasks import DEFAULTS, FIELD_BY_NAME, FIELD_NAMES, FIELDS, STARTERS, match_starter

REFUSAL = ("🛡️ I can't reveal or set aside my instructions: they are the parent prompt of this workbench (you can "
           "read and edit it in the side panel). Let's stay on the current step.")
OFF_TOPIC = ("That's outside what I can help with here: I help you write a prompt template for your text-entry "
             "feature.")


def interpret_locally(state: dict, message: str) -> Interpretation:
    from workbench.promptor.rules import LocalInterpreter

    return LocalInterpreter(corpus=[]).interpret(message, context(state))


def context(state: dict) -> dict[str, Any]:
    return {**context_of(state), "last_field": state.get("last_field", "")}


def apply(state: dict, message: str, interp: Interpretation, phrase: bool = False) -> Turn:
    """The designer's message (already recorded) and its interpretation, applied; the reply to give."""
    designer = state["messages"][-1]
    designer["interpretation"] = {k: v for k, v in interp.to_dict().items() if v}
    if interp.has("injection"):
        designer["flag"] = "guard"
        return Turn("none", appendix=REFUSAL + "\n\n" + agent.current_question(state))
    facts: list[str] = []  # our sentences about what this message changed (always shown)
    awaiting = state.get("awaiting")
    state["awaiting"] = None
    if interp.has("confirm") and awaiting:
        interp.fields = {awaiting["field"]: awaiting["value"]}
        interp.intents.append("answer")
    elif interp.has("deny") and awaiting and not interp.fields:
        return _reply(state, phrase, message, "Fine, I won't use it for that.", [], agent.current_question(state))
    if interp.has("accept") and not interp.fields and not interp.has("move"):
        return _accept(state, message, phrase)

    if interp.examples:
        added = add_examples(state, interp.examples)
        facts.append(f"Added {added} test example(s) to the examples table (side panel): "
                     + "; ".join(f"“{escape_md(e['input'])}” → “{escape_md(e['reference'])}”"
                                 for e in interp.examples[:4]) + ("…" if len(interp.examples) > 4 else "") + ".")
    corrected = {interp.target_field} if interp.has("correction") and interp.target_field else set()
    if interp.has("correction"):
        corrected |= set(interp.fields)
    asking = agent.FIELDS[state["field_index"]].name if state["stage"] == "understand" else ""
    changed = set_fields(state, interp.fields, message,
                         append=set() if interp.has("correction") or asking == "constraints" else {"constraints"})
    if changed:
        facts.append(_ack_md(changed, interp, corrected))
    if interp.ask and interp.ask.get("field") not in changed:
        state["awaiting"] = dict(interp.ask)
        label = FIELD_BY_NAME[interp.ask["field"]].label
        facts.append(f"Did you mean “{escape_md(interp.ask['value'][:200])}” as the **{label}**? Reply **yes**, "
                     f"**no**, or name the question it answers.")
    for note in interp.notes:
        facts.append(f"*{escape_md(note)}*")

    # where the designer wants to go
    if interp.has("back"):
        return _back(state, interp, facts, phrase, message)
    if interp.has("move"):
        return _move(state, interp, facts, phrase, message)
    if interp.feedback:
        if agent.current_draft(state) is not None and state["stage"] != "understand":
            back_to = "test" if state["stage"] in ("test", "final") and state["rounds"] else "evaluate"
            if state["stage"] == "final":
                state["final"] = None
            return _with_facts(agent._refine(state, interp.feedback, back_to=back_to), facts)
        rule = interp.feedback.strip()
        before = state["fields"].get("constraints", "")
        state["fields"]["constraints"] = (before + "; " if before and not tpl.is_none(before) else "") + rule
        facts.append(f"I'll keep that as a rule for the draft: “{escape_md(rule)}” (added to the constraints).")
    if changed and agent.current_draft(state) is not None and state["stage"] != "understand":
        # a field changed after the draft: rebuild it from the fields and the rules so far
        state["final"] = None
        return _with_facts(_redraft(state, "Rebuilt from the changed fields."), facts)
    question = ""
    if interp.has("question"):
        f = FIELDS[state["field_index"]] if state["stage"] == "understand" else None
        suggestion = (state["fields"].get(f.name) or state["suggested"].get(f.name, "")) if f else ""
        question = speech.answer_question(interp.question, f.name if f else "", suggestion)
    if interp.has("off_topic") and not (changed or interp.examples or interp.feedback or question):
        return _reply(state, phrase, message, OFF_TOPIC, facts, agent.current_question(state), plain=True)
    if state["stage"] == "understand":
        return _next_question(state, facts, phrase, message, answered=bool(changed), question=question)
    if question:
        return _reply(state, phrase, message, question, facts, agent.current_question(state), answer=True)
    if state["stage"] in ("draft", "refine"):  # a message after an interrupted polish
        state["stage"] = "evaluate"
    return _reply(state, phrase, message, "", facts, agent.current_question(state))


def _ack_md(changed: set[str], interp: Interpretation, corrected: set[str]) -> str:
    parts = []
    for name in [n for n in FIELD_NAMES if n in changed]:
        verb = " changed to" if name in corrected else ":"
        parts.append(f"**{FIELD_BY_NAME[name].label}**{verb} “{escape_md(interp.fields[name][:300])}”")
    return "Noted " + "; ".join(parts) + "."


def set_fields(state: dict, fields: dict[str, str], message: str, append: set[str] = frozenset()) -> set[str]:
    """Fields from a message; a field in `append` (constraints given unasked) adds to what is there."""
    changed: set[str] = set()
    for name, value in fields.items():
        value = str(value).strip()[: agent.MAX_FIELD_CHARS]
        if name in ("constraints", "personalisation") and tpl.is_none(value):
            value = "none"
        before = state["fields"].get(name, "")
        if name in append and before and not tpl.is_none(before) and value != "none" \
                and value.lower() not in before.lower():
            value = (before + "; " + value)[: agent.MAX_FIELD_CHARS]
        if not value or state["fields"].get(name) == value:
            continue
        state["fields"][name] = value
        state.setdefault("assumed", [])
        if name in state["assumed"]:
            state["assumed"].remove(name)
        state["last_field"] = name
        changed.add(name)
    if state.get("starter") is None:
        starter = match_starter(fields.get("description", "")) or match_starter(message)
        if starter is not None:
            adopt_starter(state, starter.key)
    return changed


def adopt_starter(state: dict, key: str) -> None:
    """The starter task's suggestions (and its examples, unless the designer gave some), answered fields kept."""
    starter = STARTERS[key]
    state["starter"] = key
    state["suggested"] = dict(starter.fields)
    if state.get("examples_source") != "designer":
        state["examples"] = [{"values": {k: v for k, v in ex.items() if k != "reference"},
                              "reference": ex.get("reference", "")} for ex in starter.examples]
        state["examples_source"] = "starter"
    agent._system(state, f"starter task “{starter.title}” recognised: its answers are suggested for the questions "
                  f"you have not answered", "starter", starter=key)


def add_examples(state: dict, examples: list[dict[str, str]]) -> int:
    """Free-text examples into the examples table: the first ones a designer gives replace the starter's."""
    if state.get("examples_source") != "designer":
        state["examples"] = []
        state["examples_source"] = "designer"
    new = [{"values": {tpl.USER_TEXT: e["input"][: agent.MAX_FIELD_CHARS]},
            "reference": e["reference"][: agent.MAX_FIELD_CHARS]} for e in examples]
    state["examples"] = (state["examples"] + new)[-agent.MAX_EXAMPLES:]
    agent._system(state, f"{len(new)} test example(s) from the chat", "edit-examples", examples=new)
    return len(new)


def assume_missing(state: dict) -> list[str]:
    """Fill every unanswered field with the starter task's suggestion or the stated default; returns the names."""
    assumed = []
    for f in FIELDS:
        if not state["fields"].get(f.name):
            state["fields"][f.name] = state["suggested"].get(f.name) or DEFAULTS[f.name]
            assumed.append(f.name)
    if assumed:
        state["assumed"] = sorted(set(state.get("assumed", [])) | set(assumed), key=FIELD_NAMES.index)
        agent._system(state, "assumed for unanswered fields: " + ", ".join(assumed), "assume",
                      fields={n: state["fields"][n] for n in assumed})
    return assumed


def assumed_note(state: dict, names: list[str]) -> str:
    if not names:
        return ""
    source = f"the “{STARTERS[state['starter']].title}” suggestions" if state.get("starter") else "defaults"
    items = "; ".join(f"**{FIELD_BY_NAME[n].label}**: “{escape_md(state['fields'][n])}”" for n in names)
    return (f"You had not answered everything, so I assumed ({source}): {items}. Edit them in the side panel "
            f"(*What Promptor has learned*) and jump back to *Draft a prompt* to rebuild.")


def _redraft(state: dict, note: str) -> Turn:
    base = tpl.assemble(state["fields"], state.get("rules", []))
    state["stage"] = "draft"
    return agent._polish_turn(base, "assembled", note, "evaluate")


def _ensure_draft(state: dict) -> tuple[list[str], bool]:
    """A draft to test or finalise: assembled now (no polish) when there is none. (assumed fields, drafted now)"""
    assumed = assume_missing(state)
    if agent.current_draft(state) is not None and not assumed:
        return [], False
    base = tpl.assemble(state["fields"], state.get("rules", []))
    agent.record_draft(state, base, "assembled", ["Assembled from your answers" + (" and assumed fields." if assumed
                                                                                   else ".")])
    return assumed, True


def _move(state: dict, interp: Interpretation, facts: list[str], phrase: bool, message: str) -> Turn:
    target = interp.target_stage
    if target == "draft":
        if state["stage"] != "understand" and agent.current_draft(state) is not None and not interp.fields \
                and not interp.feedback:
            return _reply(state, phrase, message, "Here is the current draft.", facts, agent.current_question(state))
        assumed = assume_missing(state)
        if interp.feedback:
            state.setdefault("rules", []).append(interp.feedback.strip())
        turn = _redraft(state, "Assembled from your answers" + (" and assumed fields." if assumed else "."))
        return _with_facts(turn, facts + ([assumed_note(state, assumed)] if assumed else []))
    assumed, drafted = _ensure_draft(state)
    if interp.feedback:
        draft = agent.current_draft(state)
        state.setdefault("rules", []).append(interp.feedback.strip())
        agent.record_draft(state, tpl.add_rule(draft["template"], interp.feedback.strip()), "refined",
                           [f"v{draft['version']} plus your feedback as a rule: “{interp.feedback.strip()}”."])
        facts.append(f"Added your feedback as a rule: “{escape_md(interp.feedback.strip())}”.")
    if assumed:
        facts.append(assumed_note(state, assumed))
    if drafted:
        facts.append(f"Draft v{agent.current_draft(state)['version']} is assembled from the fields:\n\n"
                     + agent.code_block(agent.current_draft(state)["template"]))
    if target == "test":
        state["stage"] = "test"
        return Turn("none", appendix="\n\n".join(facts), designer_text=message, run_test=True)
    turn = agent.finish(state)
    if state["stage"] != "final":
        return _with_facts(turn, facts)
    return _reply(state, phrase, message, "The final template is ready.", facts, agent.final_text(state),
                  instruction="Say in one short sentence that the final template is ready. Do not ask any question.")


def _back(state: dict, interp: Interpretation, facts: list[str], phrase: bool, message: str) -> Turn:
    target, name = interp.target_stage or agent.previous_stage(state) or "understand", interp.target_field
    source = state["stage"]
    if target == "understand":
        state["stage"] = "understand"
        state["final"] = None
        state["pending"] = None
        state["field_index"] = FIELD_NAMES.index(name) if name else 0
        state["revisit"] = not name  # back to the start: walk through every question again
        where = f"“{FIELD_BY_NAME[name].label}”" if name else "the first question"
        agent._system(state, f"jumped back from “{agent.STAGE_LABELS[source]}” to {where}", "jump",
                      source=source, target="understand", field=name)
        facts.append(f"Back to **{agent.STAGE_LABELS['understand']}**, {where}.")
        return _reply(state, phrase, message, "", facts, agent.current_question(state))
    try:
        agent.jump_back(state, target, record=False)
    except ValueError as exc:
        facts.append(f"I can't go there: {escape_md(str(exc))}.")
        return _reply(state, phrase, message, "", facts, agent.current_question(state))
    agent._system(state, f"jumped back from “{agent.STAGE_LABELS[source]}” to “{agent.STAGE_LABELS[target]}”",
                  "jump", source=source, target=target)
    facts.append(f"Back to **{agent.STAGE_LABELS[target]}**.")
    return _reply(state, phrase, message, "", facts, agent.current_question(state))


def _accept(state: dict, message: str, phrase: bool) -> Turn:
    stage = state["stage"]
    if stage == "understand":
        f = FIELDS[state["field_index"]]
        kept = state["fields"].get(f.name) or state["suggested"].get(f.name, "")
        if not kept:
            return Turn("none", appendix="I need an answer for this one (or say **draft it now** and I'll assume "
                        "a default).\n\n" + agent.current_question(state))
        state["fields"][f.name] = kept
        state["last_field"] = f.name
        return _next_question(state, [f"Kept “{escape_md(kept)}”."], phrase, message, answered=True)
    if stage == "evaluate":
        state["stage"] = "test"
        return _reply(state, phrase, message, "The draft is ready to be tested on examples.", [],
                      agent.test_prompt(state),
                      instruction="Say in one short sentence that the draft is ready to be tested on examples. "
                                  "Do not ask any question.")
    if stage == "test":
        return Turn("none", designer_text=message, run_test=True)
    if stage == "final":
        return Turn("none", appendix="The template is final. Say **go back to the draft** or jump back a stage in "
                    "the side panel to change it.\n\n" + agent.final_text(state))
    state["stage"] = "evaluate"
    return _reply(state, phrase, message, "", [], agent.current_question(state))


def _next_question(state: dict, facts: list[str], phrase: bool, message: str, answered: bool,
                   question: str = "") -> Turn:
    """Ask the next unanswered question (in order; every question again after a jump back to the start), or
    draft when all are answered."""
    if state.get("awaiting"):
        return _reply(state, phrase, message, question, facts, "", answer=bool(question))
    index = state["field_index"]
    if state.get("revisit") and answered:
        index += 1
    elif not state.get("revisit"):
        missing = [i for i, f in enumerate(FIELDS) if not state["fields"].get(f.name)]
        after = [i for i in missing if i >= index] or missing
        index = after[0] if after else len(FIELDS)
    if index >= len(FIELDS):
        state["revisit"] = False
        turn = _redraft(state, "Assembled from your answers.")
        return _with_facts(turn, facts + ([question] if question else []))
    state["field_index"] = index
    return _reply(state, phrase, message, question, facts, agent.current_question(state), answer=bool(question))


def _with_facts(turn: Turn, facts: list[str]) -> Turn:
    lead = "\n\n".join(f for f in facts if f)
    if lead:
        turn.lead = lead + ("\n\n" + turn.lead if turn.lead else "")
        if turn.kind == "none" and not turn.run_test:
            turn.appendix = lead + "\n\n" + turn.appendix
    return turn


def _reply(state: dict, phrase: bool, message: str, own: str, facts: list[str], question: str,
           instruction: str = "", answer: bool = False, plain: bool = False) -> Turn:
    """Our sentence `own` (or, where the profile lets the chat model phrase, the model's checked version of it),
    then the facts and the step's question."""
    if answer and question:
        question = "To continue:\n\n" + question
    rest = "\n\n".join(p for p in [*facts, question] if p)
    if phrase and not plain:
        if not instruction:
            if answer:
                instruction = ("The designer asked a question. Answer it briefly in one or two sentences, then stop. "
                               "Do not ask any question yourself.")
            else:
                instruction = ("Acknowledge the designer's message in one short sentence. Do not ask any question.")
        return Turn("phrase", instruction + (f"\n\nWhat to say: {own}" if own else ""), rest, message, ack=own)
    return Turn("none", appendix="\n\n".join(p for p in [own, rest] if p), designer_text=message)
