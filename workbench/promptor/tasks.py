"""What Promptor asks about a text-entry task, and the starter tasks from the paper's domain (sentence
prediction and personalisation in intelligent text entry, arXiv 2310.08101). Data, not model memory: the agent
asks these questions in this order whatever chat model phrases them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    question: str


FIELDS: tuple[Field, ...] = (
    Field("description", "task", "Describe the text-entry feature you want in a sentence, or name a starter task "
          "(sentence completion, next-phrase suggestion, abbreviation expansion, personalised reply suggestion)."),
    Field("users", "who types", "Who types? Describe the people who will use it, and where (device, app)."),
    Field("user_input", "what they type", "What do they type? Describe the text the system receives "
          "(e.g. the first words of a sentence, an abbreviated message)."),
    Field("prediction", "what the system predicts or rewrites", "What should the system predict or rewrite "
          "from that text?"),
    Field("constraints", "constraints", "Any constraints on the output (length, format, words to avoid)? "
          "Separate several with ';'. Say 'none' if there are none."),
    Field("tone", "tone", "What tone or style should the output have?"),
    Field("personalisation", "personalisation data", "Is there personalisation data about the user the system "
          "can use (e.g. their recent sent messages)? Describe it, or say 'none'."),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
# What an unanswered field becomes when the designer asks for a draft, a test or the final template early and no
# starter task suggests a value (the reply names every field it assumed).
DEFAULTS = {
    "description": "help the user write text faster",
    "users": "people typing on a phone or computer",
    "user_input": "the text the user has typed so far",
    "prediction": "the text the user most likely wants to write",
    "constraints": "keep it short; one sentence at most",
    "tone": "natural and plain",
    "personalisation": "none",
}


@dataclass(frozen=True)
class Starter:
    key: str
    title: str
    fields: dict[str, str]
    examples: tuple[dict[str, str], ...]  # placeholder values plus "reference" (the designer's ideal output)
    keywords: tuple[str, ...]


STARTERS: dict[str, Starter] = {s.key: s for s in (
    Starter(
        "sentence_completion", "Sentence completion",
        {"description": "complete the sentence a user is typing in a messaging app",
         "users": "people writing short messages on a phone keyboard",
         "user_input": "the first words of a sentence",
         "prediction": "the rest of the sentence, continuing the user's words",
         "constraints": "at most 12 words; do not repeat the words already typed",
         "tone": "casual, like a friendly text message",
         "personalisation": "none"},
        ({"user_text": "I'm running a bit", "reference": "late, I'll be there in ten minutes"},
         {"user_text": "Thanks so much for", "reference": "the lovely dinner last night"},
         {"user_text": "Can we move the meeting", "reference": "to Thursday afternoon instead?"}),
        ("sentence completion", "complete the sentence", "completion"),
    ),
    Starter(
        "next_phrase", "Next-phrase suggestion",
        {"description": "suggest the next short phrase while a user writes an email",
         "users": "office workers writing emails on a laptop",
         "user_input": "the email text typed so far",
         "prediction": "the next two to five words the user is likely to write",
         "constraints": "two to five words; no full stop unless the sentence ends",
         "tone": "polite and professional",
         "personalisation": "none"},
        ({"user_text": "Please find attached the", "reference": "report you asked for"},
         {"user_text": "Let me know if you have", "reference": "any questions"},
         {"user_text": "I look forward to", "reference": "hearing from you"}),
        ("next phrase", "next-phrase", "phrase suggestion"),
    ),
    Starter(
        "abbreviation_expansion", "Abbreviation expansion",
        {"description": "expand an abbreviated message into the full sentence",
         "users": "people typing quickly on a phone, or users of an AAC device who type abbreviations",
         "user_input": "an abbreviated message using first letters and chat abbreviations",
         "prediction": "the full sentence the abbreviation stands for",
         "constraints": "keep the meaning; one sentence; fix capitalisation and punctuation",
         "tone": "natural and plain",
         "personalisation": "none"},
        ({"user_text": "omw, brt", "reference": "On my way, be right there."},
         {"user_text": "ty for the gr8 time", "reference": "Thank you for the great time."},
         {"user_text": "cu tmrw @ 5", "reference": "See you tomorrow at 5."}),
        ("abbreviation", "abbreviations"),
    ),
    Starter(
        "personalised_reply", "Personalised reply suggestion",
        {"description": "suggest a reply to a received message in the user's own style",
         "users": "people replying to friends in a chat app on their phone",
         "user_input": "a message the user has just received",
         "prediction": "a short reply the user would send",
         "constraints": "one or two short sentences; no emojis unless the user uses them",
         "tone": "the user's own style",
         "personalisation": "the user's recent sent messages"},
        ({"user_text": "Are you coming to the party on Saturday?",
          "user_history": "haha yes!! can't wait; omg same; see u there :)",
          "reference": "yes!! wouldn't miss it :)"},
         {"user_text": "Can you send me the notes from class?",
          "user_history": "sure thing; np!; sending now :)",
          "reference": "sure thing, sending them now :)"},
         {"user_text": "Want to grab lunch tomorrow?",
          "user_history": "omg yes; can't today sorry!!; haha ok",
          "reference": "omg yes!! where?"}),
        ("personalised reply", "personalized reply", "reply suggestion"),
    ),
)}


def match_starter(text: str) -> Starter | None:
    """The starter task a designer's first answer names (by key, title or keyword), else None."""
    lowered = re.sub(r"[\s_-]+", " ", text.lower())
    for starter in STARTERS.values():
        names = (starter.key.replace("_", " "), starter.title.lower(), *starter.keywords)
        if any(re.search(r"\b" + re.escape(n) + r"\b", lowered) for n in names):
            return starter
    return None
