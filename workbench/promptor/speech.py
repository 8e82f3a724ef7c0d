"""What the agent says in its own words, and the check a chat model's phrasing must pass before a designer sees it.

Whether a chat model phrases the agent's sentences is profile data (`settings: promptor: {capable: ...}`); where
it does not (the offline profile's 135M model), every sentence comes from here. Where it does, `check_reply`
fails a reply that shares no content word with the step, or that brings in words found nowhere in the conversation
(names, places, events the designer never mentioned), and the agent's own sentence replaces it, with a note in the
transcript."""

from __future__ import annotations

import re
from typing import Any

from workbench.promptor.tasks import FIELD_BY_NAME

_STOP = frozenset("""a an the and or but if then so of to in on for with at by from as is are was were be been being
it its this that these those there here i me my we us our you your they them their he she his her what which who
whom when where why how all any both each few more most other some such no nor not only own same than too very can
will just should would could may might must shall do does did doing have has had having am also into about over
under again once up down out off further yet get got let lets let's i'm i'll i've you're we're it's that's don't
dont doesn't isn't aren't won't can't cannot one two now""".split())

# words any short acknowledgement may use without the conversation having used them
_CONVERSATIONAL = frozenset("""thanks thank great good noted got understood sure okay ok perfect fine nice sounds
sound makes sense clear right alright cool lovely excellent wonderful helpful help next step move moving let's
continue ready question questions answer answers asked ask keep kept use using used added add adding note noting
draft template prompt test tested testing round final done work working look looking check checked change changed
changes update updated field fields value values please happy glad well will ahead onto also already""".split())

MAX_REPLY_WORDS = 60


def content_words(text: str) -> set[str]:
    words = re.findall(r"[a-z][a-z']+", (text or "").lower())
    return {_stem(w) for w in words if w not in _STOP and len(w) > 2}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def check_reply(reply: str, step: str, conversation: str) -> str | None:
    """None when a model's reply may be shown; else why not. `step`: what the agent must say now (the
    instruction and our text for the step); `conversation`: every designer message, our replies and the fields."""
    text = (reply or "").strip()
    if not text:
        return "the reply is empty"
    if len(text.split()) > MAX_REPLY_WORDS:
        return f"the reply is {len(text.split())} words long (at most {MAX_REPLY_WORDS})"
    words = content_words(text)
    if not words & content_words(step):
        return "it shares no content word with the step"
    known = content_words(step) | content_words(conversation) | {_stem(w) for w in _CONVERSATIONAL}
    novel = sorted(words - known)
    if len(novel) > max(1, len(words) // 4):
        return "it mentions things that are not in the conversation (" + ", ".join(novel[:6]) + ")"
    names = [w for w in re.findall(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-z]{2,}\b", text)
             if w.lower() not in (conversation + " " + step).lower() and w not in {"Promptor", "I"}]
    if names:
        return "it names things that are not in the conversation (" + ", ".join(names[:4]) + ")"
    return None


# --------------------------------------------------------------------------- the agent's own answers

_FAQ: list[tuple[str, str]] = [
    (r"placeholder|\{|brace", "A placeholder is a name in braces, such as {user_text}, that your app replaces with "
     "real text before it sends the prompt: {user_text} is what the user typed, {user_history} their past messages "
     "when you use personalisation."),
    (r"how many examples|examples do you need|how many (?:test )?(?:cases|inputs)",
     "Three to six examples are enough for a test round (at most 12): each is an input and, ideally, the output "
     "you would want."),
    (r"example|format.*(?:example|test)|how do i (?:give|add|write) (?:test|examples?)",
     "Write test examples like “input: omw home -> output: On my way home.”, or “'ty' should become 'Thank you'”, "
     "one per line, or put them in the examples table in the side panel."),
    (r"similarity|perplexity|metric|score|measure",
     "Each test round scores every output: similarity to your ideal output (sentence embeddings, higher is "
     "closer) and perplexity under a small base model (lower reads more fluently)."),
    (r"how long|how many (?:steps|questions)|what(?:'s| is| happens)? next|what now|where are we|which step",
     "There are six steps: understand the task (seven short questions), draft, evaluate, test rounds, refine, and "
     "the final template. You can ask for a draft, a test or the final template at any time; I fill what is "
     "missing with suggestions and say so."),
    (r"skip|do i have to|must i|required|optional",
     "No question is required: say “draft it now” and I use the starter task's suggestion or a default for "
     "every unanswered field, and tell you which ones."),
    (r"who are you|what are you|what do you do|what can you do",
     "I am Promptor: I ask about your text-entry feature, write a prompt template from your answers, test it on "
     "your examples and refine it with your feedback."),
    (r"model|llm|gpt|which ai",
     "The template is meant for a chat model of your choice; test rounds run it on the target model chosen in "
     "the side panel."),
]


_FIELD_TOPICS = {
    "constraints": r"\bconstraints?\b", "tone": r"\btone\b|\bstyle\b", "personalisation": r"personali[sz]",
    "users": r"\bwho types\b|\busers?\b", "user_input": r"\bwhat they type\b|\binput\b",
    "prediction": r"\bpredict", "description": r"\btask\b|\bfeature\b|\bdescription\b",
}


def field_help(name: str, suggestion: str) -> str:
    f = FIELD_BY_NAME[name]
    text = f"About {f.label}: {f.question}"
    if suggestion:
        text += f" For example: “{suggestion}”."
    return text


def answer_question(question: str, asking: str, suggestion: str) -> str:
    """Our answer to a designer's question; None-free: an unknown question gets an honest 'I can't answer that'."""
    q = question.lower()
    if asking and re.search(r"\b(?:mean|what do you want|what should i (?:say|write|put)|example of|suggest|"
                            r"recommend|like what|such as|not sure|don't know|no idea)\b", q):
        return field_help(asking, suggestion)
    for pattern, answer in _FAQ:
        if re.search(pattern, q):
            return answer
    for field_name, words in _FIELD_TOPICS.items():
        if re.search(words, q) and re.search(r"\bmean|what is|what's|what are|why|how\b", q):
            return field_help(field_name, "")
    return ("I can only help with writing your prompt template here, so I can't answer that one.")


def conversation_text(state: dict[str, Any]) -> str:
    parts = [m.get("content", "") for m in state["messages"] if m["role"] == "designer"]
    parts += [m.get("appendix", "") for m in state["messages"] if m["role"] == "agent"]
    parts += [str(v) for v in state["fields"].values()] + [str(v) for v in state["suggested"].values()]
    return "\n".join(parts)
