"""The offline message interpreter: rules for what designers write (labelled answers, cue phrases, test examples
in their common forms, requests to move on or go back, corrections) plus sentence-embedding similarity
(all-MiniLM-L6-v2, the profile's `embeddings` role) to a labelled corpus of designer messages
(assets/promptor/corpus.yaml, train split) for the clauses no rule claims. No LLM.

`LocalInterpreter(embed=None)` runs on the rules alone (the stage machine's default when no embedder is given)."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from workbench.promptor.interpret import ASK_BELOW, Interpretation
from workbench.promptor.tasks import FIELD_NAMES, match_starter

# --------------------------------------------------------------------------- injection (kept from the first agent)

_INJECTION = [re.compile(p, re.I) for p in (
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}\b(instructions?|prompt|rules|steps?|guidelines)\b",
    r"\b(reveal|show|print|repeat|tell|give|share|leak|output|what)\b.{0,40}\b(system|parent|hidden|initial|"
    r"original|secret)\s*(prompt|instructions?|message)\b",
    r"\b(system|parent) prompt\b",
    r"\byou are (now|no longer)\b",
    r"\b(pretend|act as if) (to be|you are|you're)\b",
    r"\b(jailbreak|developer mode|dan mode)\b",
    r"\bstop being promptor\b",
)]


def injection(text: str) -> bool:
    return any(p.search(text) for p in _INJECTION)


# --------------------------------------------------------------------------- short answers

ACCEPT = {"ok", "okay", "yes", "y", "yep", "yeah", "keep", "keep it", "fine", "good", "sure", "same", "default",
          "looks good", "lgtm", "sounds good", "that's fine", "thats fine", "correct", "right", "next", "continue",
          "go", "go on", "proceed", "👍", "ok keep it", "yes keep it", "perfect", "great", "that works",
          "ok thanks", "ok, thanks", "works for me", "use the suggestion", "the suggestion is fine", "agreed",
          "fine by me", "yes please", "ok sure", "sure thing", "alright", "all good", "good enough", "use that"}
YES = {"yes", "y", "yep", "yeah", "correct", "right", "exactly", "that's right", "yes it is", "sure", "ok", "okay",
       "yes please", "indeed", "true"}
BACK = {"back", "go back", "previous", "undo", "previous step", "step back", "back please"}
NO = {"no", "nope", "n", "wrong", "not really", "no it isn't", "no it's not", "neither"}


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).strip(" .!")


# --------------------------------------------------------------------------- test examples in free text

_Q = r"(?:\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|'((?:[^']|'(?=[A-Za-z]))+)')"  # one quoted string, apostrophes kept
_QUOTED = re.compile(_Q)
_BECOMES = re.compile(_Q + r"\s*(?:,\s*)?(?:should\s+(?:become|be|give|expand\s+to|turn\s+into|read|come\s+out\s+as|"
                      r"produce|map\s+to|output)|becomes|means|expands?\s+to|turns?\s+into|gives|maps?\s+to|is|=|:|"
                      r"->|→|=>|—>|-->)\s*" + _Q, re.I)
_ARROW = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?(?:input\s*[:=]?\s*)?(.+?)\s*(?:->|→|=>|—>|-->|⇒)\s*"
                    r"(?:output\s*[:=]?\s*|expected\s*[:=]?\s*)?(.+?)\s*$", re.I)
_LABELLED = re.compile(r"\b(?:input|in|typed|user types?)\s*[:=]\s*(.+?)\s*(?:[,;|]|->|→|=>)?\s*(?:output|out|expected|ideal|"
                       r"reference|target|should (?:get|become|be))\s*[:=]?\s*(.+?)\s*$", re.I)
_PAIRED = re.compile(r"\binputs?\b[:\s]*(?P<ins>.+?)\b(?:references?|outputs?|expected(?: outputs?)?|ideal outputs?|"
                     r"answers?|targets?)\b[:\s]*(?P<outs>.+)", re.I | re.S)


def _unquote(text: str) -> str:
    text = text.strip().strip(",;")
    m = re.fullmatch(_Q, text)
    if m:
        return next(g for g in m.groups() if g is not None).strip()
    return text.strip()


def _quoted(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(text)]


def extract_examples(text: str) -> tuple[list[dict[str, str]], str]:
    """Test examples written as `input -> output` lines, `'x' should become 'y'`, `input: x, output: y`, table rows
    `x | y`, or paired lists ("inputs 'a', 'b' ... references 'A', 'B'"); returns them and the text without them."""
    examples: list[dict[str, str]] = []
    kept: list[str] = []
    paired = _PAIRED.search(text)
    if paired:
        ins, outs = _quoted(paired.group("ins")), _quoted(paired.group("outs"))
        if ins and len(ins) == len(outs):
            examples += [{"input": i, "reference": o} for i, o in zip(ins, outs)]
            text = text[:paired.start()] + text[paired.end():]
    for line in text.splitlines():
        found = False
        pairs = list(_BECOMES.finditer(line))
        if pairs:
            for m in pairs:
                groups = [g for g in m.groups()]
                first = next(g for g in groups[:4] if g is not None)
                second = next(g for g in groups[4:] if g is not None)
                if first.strip() and second.strip():
                    examples.append({"input": first.strip(), "reference": second.strip()})
            line = _BECOMES.sub(" ", line)
            line = re.sub(r"\b(?:e\.?g\.?|for example|for instance|like|such as)\s*[:,.]?\s*$", "", line.strip(" ,;"),
                          flags=re.I)
            kept.append(line)
            continue
        else:
            for part in re.split(r"\s*;\s*", line) if line.count("->") + line.count("→") > 1 else [line]:
                m = _LABELLED.search(part) or (_ARROW.match(part) if re.search(r"->|→|=>|—>|-->|⇒", part) else None)
                if m:
                    marker = re.match(r"^(.*?)\b(?:e\.?g\.?|like|for example|examples?|for instance|such as|test with)"
                                      r"\b[:,]?\s*", m.group(1), flags=re.I)
                    if marker and marker.group(1).strip(" ,.;:"):
                        kept.append(marker.group(1).strip(" ,;:"))
                    src = m.group(1)[marker.end():] if marker else m.group(1)
                    src, ref = _unquote(src), _unquote(m.group(2))
                    if src and ref and len(src) <= 300:
                        examples.append({"input": src, "reference": ref})
                        found = True
            if not found and line.count("|") >= 1 and not re.fullmatch(r"[\s|:-]+", line):
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) == 2 and all(cells):
                    if not re.fullmatch(r"(?i)(inputs?|what they type|typed|user_text)", cells[0]):
                        examples.append({"input": _unquote(cells[0]), "reference": _unquote(cells[1])})
                    found = True
            elif not found and re.fullmatch(r"[\s|:-]{3,}", line.strip() or "x"):
                found = True  # a markdown table's separator row
        if not found:
            kept.append(line)
    return examples, "\n".join(kept)


# --------------------------------------------------------------------------- moving on, going back, corrections

_MOVE = {
    "final": [r"\b(?:give|show|send|get|make|produce|output|want|need|see)\b.{0,12}\bfinal\b",
              r"\bfinal (?:template|prompt|version|draft)\b", r"^(?:final|done|finish(?:ed)?|finali[sz]e(?: it)?|"
              r"that'?s it|we'?re done|i'?m done|ship it|wrap (?:it )?up)\b", r"\bwrap (?:it |this )?up\b",
              r"\b(?:let'?s|we can|i want to|ready to) (?:finish|finali[sz]e)\b", r"\bmake (?:it|this) final\b",
              r"\bthat'?s (?:the )?final\b", r"^(?:looks good|great|perfect|ok|okay|good|fine|nice)\b.{0,30}\bfinal\b",
              r"\bfinal\b.{0,12}\b(?:one|version|please|for me)\b"],
    "test": [r"\b(?:let'?s|let us|can we|could we|please|go ahead and|now|i want to|want to)\s+(?:test|try)\b",
             r"\b(?:run|start|do)\s+(?:a\s+|the\s+|another\s+)?(?:test(?:s| rounds?)?|round)\b",
             r"^(?:test|run|try it|again|run it again|test again)(?: it| this| that)?(?: now| out| again)?$", r"\btry it (?:out|on)\b",
             r"\btest (?:it|this|the (?:draft|prompt|template))\b"],
    "draft": [r"\bdraft (?:it|one|something|the prompt|a prompt|the template)\b",
              r"\b(?:write|generate|create|build|produce|show|give)\s+(?:me\s+)?(?:the |a |your )?(?:first\s+)?"
              r"(?:draft|prompt|template)\b(?! is)", r"\b(?:just|go ahead and|please)\s+draft\b",
              r"\bskip (?:the |these |the rest of the |remaining |other )?questions\b",
              r"\b(?:let'?s see|show me) (?:a |the |your )?(?:draft|prompt)\b", r"^draft(?: now| please)?$",
              r"\b(?:use|take) (?:the |your )?(?:defaults?|suggestions?) for the rest\b"],
}
_MOVE = {k: [re.compile(p, re.I) for p in v] for k, v in _MOVE.items()}
_BACK = re.compile(r"\b(?:go|get|jump|step|take me)\s+back\b(?:\s+to)?(?:\s+the)?\s*(?P<t>[\w' ]{0,30})|"
                   r"\b(?:back to|return to|revisit|reopen)\s+(?:the\s+)?(?P<t2>[\w' ]{1,30})", re.I)
_FIELD_WORDS = [
    ("constraints", r"constraints?|rules?|limits?|length"),
    ("tone", r"tone|style|voice"),
    ("users", r"users?|audience|who (?:types|uses)"),
    ("user_input", r"inputs?|what they type|typed text"),
    ("prediction", r"predictions?|outputs?|what (?:it|the system) predicts"),
    ("personalisation", r"personali[sz]ation|history|personal data"),
    ("description", r"description|task|feature|what it does"),
]
_CORRECTION = re.compile(r"^\s*(?:(?:no|nope)\s*[,.!:;]+|(?:no|nope|sorry)[,]?(?=\s+i\s+mean)|actually\b[,.!:;]*|wait\b[,.!:;]*|"
                         r"oops\b[,.!:;]*|correction\b[,.!:;]*)\s*(?:i\s+meant|i\s+mean|let me rephrase|make that|"
                         r"change that to|it should be|rather|scratch that)?[,:]?\s*|"
                         r"^\s*(?:i\s+meant|i\s+mean|scratch that|change of plan|on second thought)[,:]?\s*", re.I)
_CHANGE = re.compile(r"\b(?:change|set|switch|update|make)\s+(?:the\s+)?(?P<f>[\w ]{2,20}?)\s+to\s+(?P<v>.+)", re.I)


def field_named(text: str) -> str:
    t = text.lower()
    for name, words in _FIELD_WORDS:
        if re.search(r"\b(?:" + words + r")\b", t):
            return name
    return ""


# --------------------------------------------------------------------------- field cues

_PEOPLE = (r"users?|people|persons?|nurses|doctors|clinicians|students|teens|teenagers|kids|children|workers|"
           r"agents|staff|employees|professionals|developers|programmers|patients|customers|players|gamers|"
           r"drivers|parents|seniors|elderly|adults|writers|lawyers|engineers|teachers|researchers|everyone|"
           r"anyone|folks|members|managers|salespeople|journalists|reporters|moms|dads|retirees|typists|"
           r"texters|commuters|travell?ers|volunteers|technicians|pharmacists|paramedics|caregivers|"
           r"designers|marketers|recruiters|support reps|reps|officers|owners|shoppers|learners|speakers|relatives|"
           r"friends|family|families|grandparents|colleagues|coworkers|clients|readers|"
           r"users of [\w ]+")
_TONE_WORDS = (r"formal|informal|casual|friendly|polite|professional|playful|neutral|warm|plain|natural|chatty|"
               r"relaxed|cheerful|serious|empathetic|empathic|respectful|upbeat|direct|gentle|encouraging|"
               r"conversational|businesslike|kind|calm|witty|funny|enthusiastic|supportive|clinical|factual|"
               r"matter-of-fact|laid-back|breezy|courteous|humble|confident|concise and clear")
_CUES: list[tuple[str, float, str]] = [
    # labelled answers ("Tone: casual")
    ("description", 0.97, r"^(?:description|task|feature|the feature|goal)\s*[:=]\s*(?P<v>.+)"),
    ("users", 0.97, r"^(?:users?|audience|who(?: types)?|target users?)\s*[:=]\s*(?P<v>.+)"),
    ("user_input", 0.97, r"^(?:input|user input|what they type|they type|typed text|the input)\s*[:=]\s*(?P<v>.+)"),
    ("prediction", 0.97, r"^(?:prediction|output|predicts?|rewrite|what it predicts|the output)\s*[:=]\s*(?P<v>.+)"),
    ("constraints", 0.97, r"^(?:constraints?|rules?|limits?|restrictions?)\s*[:=]\s*(?P<v>.+)"),
    ("tone", 0.97, r"^(?:tone|style|voice)\s*[:=]\s*(?P<v>.+)"),
    ("personalisation", 0.97, r"^(?:personali[sz]ation(?: data)?|user data|history|personal data)\s*[:=]\s*(?P<v>.+)"),
    # personalisation
    ("personalisation", 0.95, r"\b(?:no|without|don'?t (?:use|need|have)|not using|skip|nothing for|there is no|"
                              r"there'?s no|we have no|we don'?t have)\s+(?:any\s+)?(?:personali[sz]\w*|personal (?:data|info\w*)|"
                              r"user data|user history|history|data about the user)\b(?P<none>)"),
    ("personalisation", 0.9, r"\b(?:personali[sz]\w*)\b.*?(?:\b(?:use|using|from|with|is|are|be|via|:)\s+)(?P<v>.+)"),
    ("personalisation", 0.85, r"(?P<v>\b(?:(?:the\s+)?(?:user'?s|their|his|her)\s+)?(?:own\s+)?(?:recent|past|previous|sent|"
                              r"old|earlier|last \w+)\s+(?:sent\s+)?(?:messages|texts|emails|replies|chats|posts|notes)\b.*|"
                              r"\b(?:message|chat|typing|conversation) history\b.*|\btheir contacts\b.*)"),
    # constraints
    ("constraints", 0.92, r"(?P<v>.*\b(?:at most|no more than|not more than|under|fewer than|less than|max(?:imum)?|up to|"
                          r"at least|exactly|between|within|shorter than|limit(?:ed)? to)\s+(?:\d+|one|two|three|four|"
                          r"five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|fifty)(?:\s*(?:-|to|and)\s*\w+)?"
                          r"\s+(?:words?|characters?|chars|tokens?|sentences?|lines?|emojis?|phrases?|items?)\b.*)"),
    ("constraints", 0.9, r"^(?:the\s+)?constraints?\s+(?:are|is|would be|will be)\s*:?\s*(?P<v>.+)"),
    ("constraints", 0.84, r"(?P<v>.*\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s*(?:-|to|or)\s*(?:\d+|two|three|"
                         r"four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty)\s+(?:words?|characters?|sentences?|"
                         r"lines?|phrases?)\b.*)"),
    ("constraints", 0.88, r"(?P<v>\b(?:no|without|never use|avoid|don'?t use|do not use)\s+(?:any\s+)?(?:emojis?|slang|"
                          r"profanity|swear\w*|hashtags|links|urls|names|abbreviations|exclamation marks?|"
                          r"questions?|jargon|made-up|invented|personal|quotes|markdown|capital|caps|numbers)\b.*)"),
    ("constraints", 0.86, r"(?P<v>\b(?:keep|make)\s+(?:it|them|the output|outputs|the replies|replies|suggestions|"
                          r"the suggestion|the completion|completions|answers)\s+(?:short|brief|concise|under|to|below|"
                          r"within|one|a single)\b.*)"),
    ("constraints", 0.84, r"(?P<v>\b(?:one|two|three|a single|single|1|2|3)\s+(?:short\s+)?(?:sentences?|lines?|"
                          r"phrases?)(?:\s+only)?\b(?! (?:of|that|the)).*)"),
    ("constraints", 0.8, r"(?P<v>\b(?:never|must not|mustn'?t|should ?n[o']t|do not|don'?t|always|must|only|avoid|"
                         r"keep the meaning|preserve|fix (?:capitali[sz]ation|punctuation|spelling|typos)|"
                         r"end with|start with|lower ?case|no full stop|no punctuation)\b.*)"),
    # tone
    ("tone", 0.92, r"\b(?:tone|style|voice|register)\b\s*(?:should be|must be|is|would be|will be|of|needs to be|:|"
                   r"-|—)?\s*(?:more\s+)?(?P<v>(?:[\w-]+(?:,\s*|\s+and\s+|\s+but\s+|\s+))*?[\w-]+)\s*\.?$"),
    ("tone", 0.9, r"^(?:(?:a|an|the|keep it|make it|it should be|should be|be|and|but|use|with|,)\s+)*"
                  r"(?P<v>(?:(?:very|quite|fairly|a bit|slightly|rather|not too|more|less)\s+)?(?:" + _TONE_WORDS +
                  r")(?:(?:,\s*|\s+and\s+|\s+but\s+(?:not\s+)?|\s+yet\s+|\s+or\s+)(?:(?:very|quite|not too|a bit)\s+)?"
                  r"(?:" + _TONE_WORDS + r"))*)\s*(?:tone|style|voice|sounding)?\.?$"),
    ("tone", 0.88, r"(?P<v>.*\b(?:" + _TONE_WORDS + r")\s+(?:tone|style|voice|register)\b.*)"),
    ("tone", 0.86, r"\b(?:should|must|would|needs? to)\s+sound\s+(?P<v>.+)"),
    ("tone", 0.86, r"^(?:i'?d say|i think|probably|maybe|i guess|something|definitely|honestly|ideally)[,]?\s+"
                   r"(?P<v>(?:(?:very|quite|fairly|a bit)\s+)?(?:" + _TONE_WORDS + r")(?:(?:,\s*|\s+and\s+|\s+but\s+"
                   r"(?:not\s+)?)(?:(?:very|quite|not too|a bit)\s+)?(?:" + _TONE_WORDS + r"))*)\b"),
    ("tone", 0.85, r"\b(?:sound|sounds|sounding) like\s+(?P<v>.+)"),
    # users
    ("users", 0.9, r"\b(?:the\s+)?(?:users?|audience|people using it|target users?|typists)\s+(?:are|is|will be|would be|"
                   r"include)\s+(?P<v>.+)"),
    ("users", 0.88, r"\b(?:used by|for use by|aimed at|targeted at|targeting|designed for|built for|made for|meant for|"
                    r"intended for)\s+(?P<v>.+)"),
    ("users", 0.85, r"^(?:(?:it'?s|it is|this is|mainly|mostly|primarily|and)\s+)*for\s+(?P<v>(?:[\w'-]+\s+){0,4}?(?:"
                    + _PEOPLE + r")\b.*)"),
    ("users", 0.84, r"\bwho types\??\s*(?P<v>.+)"),
    ("users", 0.7, r"^(?P<v>(?:(?:mostly|mainly|busy|young|older|elderly|hospital|office|field|busy|remote)\s+)?"
                   r"(?:[\w'-]+\s+){0,3}(?:" + _PEOPLE + r")\b(?:\s+(?:who|that|using|on|in|at|with|typing|writing|"
                   r"texting|of)\b.*)?)$"),
    # user_input
    ("user_input", 0.9, r"\b(?:the\s+)?inputs?\s+(?:is|are|will be|would be|consists of)\s+(?P<v>.+)"),
    ("user_input", 0.88, r"\b(?:they|users?|people|the user|he|she|you|typists)\s+(?:only\s+)?(?:type|types|enter|"
                         r"enters|write|writes|input|inputs|key in|jot down|jots down|tap out|taps out)\s+"
                         r"(?!quickly|fast|slowly|on\b|in\b|with\b|a lot\b)(?P<v>.+)"),
    ("user_input", 0.86, r"\b(?:it|the system|the model|the feature|the assistant)\s+(?:receives|gets|sees|takes)\s+"
                         r"(?:as input\s+)?(?P<v>.+)"),
    ("user_input", 0.8, r"\b(?:what they type|what the user types|typed text)\s+(?:is|are)\s+(?P<v>.+)"),
    # prediction
    ("prediction", 0.9, r"\b(?:it|the system|the model|the feature|the assistant|the tool|the keyboard|you|we)\s+"
                        r"(?:should|must|will|would|needs to|has to|is supposed to|can)?\s*(?:then\s+)?(?:just\s+)?"
                        r"(?P<v>(?:predict|predicts|suggest|suggests|complete|completes|expand|expands|rewrite|rewrites|"
                        r"return|returns|output|outputs|generate|generates|produce|produces|propose|proposes|continue|"
                        r"continues|turn|turns|convert|converts|offer|offers|give|gives|guess|guesses|fill|fills|"
                        r"finish|finishes|spell out|spells out)\b.+)"),
    ("prediction", 0.86, r"\b(?:the\s+)?(?:output|prediction|result|suggestion)\s+(?:is|should be|will be|would be|"
                         r"must be)\s+(?P<v>(?:the|a|an)\b.+)"),
    ("prediction", 0.83, r"^(?P<v>(?:predict|suggest|complete|expand|rewrite|generate|produce|propose|continue|turn|"
                        r"convert|offer|guess|finish)\b.+)"),
    # description
    ("description", 0.9, r"^(?:so\s+|ok\s+|hi[,!]?\s+|hello[,!]?\s+)?(?:i'?m|we'?re|i am|we are)\s+(?:building|making|"
                         r"designing|creating|working on|developing|prototyping)\s+(?P<v>.+)"),
    ("description", 0.86, r"^(?:hi[,!]?\s+|hello[,!]?\s+)?(?:i|we)\s+(?:want|need|would like|'d like)\s+(?:a |an )?"
                          r"(?:prompt|template)\s+(?:for|that|to)\s+(?P<v>.+)"),
    ("description", 0.85, r"^(?:the\s+)?(?:feature|task|tool|app|idea|project|goal)\s+(?:is|will|would|should)\s+"
                          r"(?:to\s+)?(?P<v>.+)"),
    ("description", 0.84, r"^(?:it'?s|it is|this is)\s+(?P<v>(?:a|an)\s+.*\b(?:feature|keyboard|tool|app|assistant|"
                          r"system|extension|plugin|add-on|widget|bot)\b.*)"),
    ("description", 0.82, r"^(?:hi[,!]?\s+)?(?:i|we)\s+(?:want|need|would like|'d like)\s+(?:to\s+(?:build|make|create)\s+)?"
                          r"(?P<v>(?:a|an)\s+.+)"),
    ("description", 0.8, r"^(?:a |an )?(?:prompt|template)\s+(?:for|that)\s+(?P<v>.+)"),
]
_CUES_RE = [(f, s, re.compile(p, re.I)) for f, s, p in _CUES]

_FEEDBACK = re.compile(
    r"\b(?:too|overly)\s+(?:formal|long|short|casual|wordy|verbose|informal|stiff|generic|vague|polite|chatty|much)\b|"
    r"\b(?:make|keep)\s+(?:it|them|the (?:outputs?|answers?|replies|suggestions?|draft|prompt))\s+(?:more|less|"
    r"shorter|longer|simpler|briefer|snappier|friendlier|warmer|clearer|tighter|plainer|crisper|punchier)\b|"
    r"\b(?:the|that|this)\s+(?:first|second|third|last|other)?\s*(?:answer|output|reply|suggestion|draft|result|"
    r"completion|expansion|prompt)s?\s+(?:is|are|was|were|sounds?|seems?|looks?|feels?|misses|missed|ignores?|"
    r"needs?|should|could|has|had)\b|"
    r"\b(?:outputs?|answers?|replies|suggestions?|results?)\s+(?:are|were|seem|look|feel|sound|keep)\b|"
    r"\b(?:add|remove|drop|include|mention)\s+(?:a |an |the )?(?:rule|line|example|sentence|instruction)\b|"
    r"\bit (?:should|shouldn'?t|keeps|always|never)\b.*\b(?:instead|anymore|again)\b|"
    r"\b(?:shorter|longer|simpler|less formal|more formal|more casual|less wordy)\b(?: please)?$", re.I)
_QUESTION_START = re.compile(r"^(?:what|why|how|who|can you|could you|do you|does|did|is|are|should|will|would|"
                             r"which|where|when|may|shall|what's|whats|explain|tell me)\b", re.I)
_ABOUT_US = re.compile(r"\b(?:you|placeholder|template|prompt|draft|step|field|constraint|tone|personali[sz]|"
                       r"example|test|round|similarity|perplexity|answer|question|mean|suggest|recommend|"
                       r"users?|output|input)\b", re.I)


def _split(text: str) -> list[str]:
    """Clauses: sentences, then ';' parts, then comma/'and' parts when each part carries its own cue."""
    out: list[str] = []
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“(])|\n+|\s+(?:—|--)\s+", text):
        # "Constraints: a; b" is one labelled answer; elsewhere ';' separates answers
        pieces += [sentence] if re.match(r"^\s*[\w ]{2,25}:\s", sentence) else re.split(r";\s*", sentence)
    for sentence in pieces:
        sentence = sentence.strip(" ,")
        if not sentence:
            continue
        parts = [p.strip(" ,") for p in re.split(r",\s*(?:and\s+|but\s+)?|\s+and\s+", sentence) if p.strip(" ,")]
        if len(parts) > 1 and all(_cue(p)[1] >= 0.84 for p in parts) and len({_cue(p)[0] for p in parts}) > 1:
            out.extend(parts)
        elif len(parts) > 1 and len({_cue(p)[0] for p in parts if _cue(p)[1] >= 0.84}) >= 2:
            # a cue-less part (a list continuation) joins the clause before it
            merged: list[str] = []
            for p in parts:
                if _cue(p)[1] >= 0.84 or not merged:
                    merged.append(p)
                else:
                    merged[-1] += ", " + p
            out.extend(merged)
        else:
            out.append(sentence)
    return out


def _cue(clause: str) -> tuple[str, float, str]:
    """The strongest field cue in a clause: (field, strength, value)."""
    best = ("", 0.0, "")
    if len(clause.split()) <= 8 and match_starter(clause) is not None:  # "sentence completion for students"
        best = ("description", 0.8, clause.strip(" .,;:"))
    for name, strength, regex in _CUES_RE:
        if strength <= best[1]:
            continue
        m = regex.search(clause.strip())
        if m:
            if "none" in m.groupdict():
                value = "none"
            else:
                value = (m.groupdict().get("v") or clause).strip(" .,;:")
            if value:
                best = (name, strength, value)
    return best


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9']+", text.lower())
            if w not in {"the", "a", "an", "me", "my", "to", "and", "of", "it", "is", "now", "please", "ok", "so",
                         "can", "you", "could", "would", "we", "i", "just", "already", "then", "us", "let's"}]


def _clean_value(value: str) -> str:
    value = re.sub(r"^(?:(?:and|but|also|plus|so|then|oh|um|uh|well|ok|okay|right)\b[,]?\s+)+", "", value.strip(),
                   flags=re.I)
    return value.strip(" .,;:!").strip()


_FOR_PEOPLE = re.compile(r"\s+for\s+(?P<u>(?:[\w'-]+\s+){0,4}?(?:" + _PEOPLE + r")\b(?!').*)$", re.I)


def _split_users(name: str, strength: float, value: str) -> list[tuple[str, float, str]]:
    """"a keyboard for nurses on tablets": the description, and who types."""
    if name == "description":
        m = _FOR_PEOPLE.search(value)
        if m and m.start() > 0:
            return [(name, strength, value[:m.start()].strip()), ("users", 0.8, m.group("u").strip(" .,"))]
    return [(name, strength, value)]


class LocalInterpreter:
    """Rules plus nearest-neighbour similarity to the labelled corpus (train split)."""

    def __init__(self, embed: Callable[[Sequence[str]], Any] | None = None, corpus: list[dict] | None = None,
                 model_name: str = ""):
        self.embed = embed
        self.name = f"local:rules+{model_name}" if embed is not None else "local:rules"
        self._bank: tuple[list[str], Any] | None = None  # (labels, normalised vectors) of corpus clauses
        self._corpus = corpus

    # ------------------------------------------------------------------ similarity to the corpus
    def _labelled(self) -> tuple[list[str], list[str]]:
        """(label, text) pairs from the corpus train split: each field value under its field, and whole messages
        with one intent (off_topic, question, feedback) under that intent."""
        from workbench.promptor.corpus import load_corpus

        items = self._corpus if self._corpus is not None else [m for m in load_corpus() if m["split"] == "train"]
        labels, texts = [], []
        for item in items:
            for name, value in (item.get("fields") or {}).items():
                if value and value != "none":
                    labels.append(name)
                    texts.append(value)
            intents = item.get("intents") or []
            for intent in ("off_topic", "feedback", "question"):
                if intent in intents and len(intents) == 1:
                    labels.append(intent)
                    texts.append(item["text"])
        return labels, texts

    def _nearest(self, text: str) -> list[tuple[str, float]]:
        """Labels ranked by the mean similarity of their 3 nearest corpus texts."""
        import numpy as np

        if self.embed is None:
            return []
        if self._bank is None:
            labels, texts = self._labelled()
            self._bank = (labels, np.asarray(self.embed(texts), dtype=np.float32))
        labels, bank = self._bank
        v = np.asarray(self.embed([text]), dtype=np.float32)[0]
        sims = bank @ v
        by_label: dict[str, list[float]] = {}
        for label, s in zip(labels, sims):
            by_label.setdefault(label, []).append(float(s))
        ranked = [(label, float(np.mean(sorted(v, reverse=True)[:3]))) for label, v in by_label.items()]
        return sorted(ranked, key=lambda x: -x[1])

    # ------------------------------------------------------------------ the interpretation
    def interpret(self, message: str, context: dict[str, Any]) -> Interpretation:
        result = Interpretation(source=self.name)
        text = message.strip()
        n = norm(text)
        stage, asking = context.get("stage", "understand"), context.get("asking", "")
        if injection(text):
            result.intents = ["injection"]
            return result
        awaiting = context.get("awaiting")
        if awaiting:
            if n in YES:
                result.intents = ["confirm"]
                return result
            first = re.match(r"^(?:no|nope|wrong)\b[,.!]?\s*(.*)$", text, re.I)
            if n in NO or first:
                named = field_named(first.group(1)) if first and first.group(1) else ""
                result.intents = ["deny"]
                if named:
                    result.target_field = named
                    result.intents = ["correction"]
                    result.fields = {named: awaiting["value"]}
                    result.confidence = {named: 0.9}
                    return result
                if not (first and first.group(1).strip()):
                    return result
                text = first.group(1).strip()
                n = norm(text)
        if n in ACCEPT or re.fullmatch(r"(?:ok|okay|yes|yep|sure|fine|great|perfect|good)[,!. ]*(?:thanks|thank you|"
                                       r"keep (?:it|that)|that'?s fine|sounds good|looks good|go on|next)?", n):
            result.intents = ["accept"]
            return result

        if n in BACK:
            result.intents = ["back"]
            return result

        # corrections: "no, I meant ..." / "change the tone to ..."
        correction = False
        m = _CORRECTION.match(text)
        if m and m.end() > 0 and text[m.end():].strip():
            correction = True
            text = text[m.end():].strip()
        change = _CHANGE.search(text)
        if change and field_named(change.group("f")):
            name = field_named(change.group("f"))
            result.intents += ["correction", "answer"]
            result.fields[name] = _clean_value(change.group("v"))
            result.confidence[name] = 0.95
            result.target_field = name
            text = (text[:change.start()] + text[change.end():]).strip()

        # test examples
        examples, text = extract_examples(text)
        if examples:
            result.examples = examples
            result.intents.append("examples")

        # moving on / going back
        target = ""
        for stage_name in ("final", "test", "draft"):
            if any(p.search(text) for p in _MOVE[stage_name]):
                target = stage_name
                break
        back = _BACK.search(text)
        if back:
            words = (back.group("t") or back.group("t2") or "").strip().lower()
            named = field_named(words)
            if named:
                result.intents.append("back")
                result.target_stage, result.target_field = "understand", named
            elif re.search(r"\b(?:draft|evaluat)", words):
                result.intents.append("back")
                result.target_stage = "evaluate"
            elif re.search(r"\btest", words):
                result.intents.append("back")
                result.target_stage = "test"
            elif re.search(r"\b(?:question|start|beginning|understand|first step|interview)", words) or not words:
                result.intents.append("back")
                result.target_stage = "understand"
            text = (text[:back.start()] + text[back.end():]).strip(" ,.")
        elif target:
            result.intents.append("move")
            result.target_stage = target
            for p in _MOVE[target]:
                text = p.sub(" ", text)
            text = re.sub(r"\b(?:now|please|then|already|for me|just|and|so)\b", " ", text, flags=re.I)
            text = re.sub(r"\b(?:template|prompt|version|draft|round|it)\b", " ", text, flags=re.I)
            text = re.sub(r"^(?:\W*(?:looks good|sounds good|great|ok|okay|perfect|thanks|thank you|cool|nice|"
                          r"fine|good|alright|that'?s all|that'?s everything|that'?s enough)\b)+", " ", text.strip(),
                          flags=re.I).strip(" ,.!?;:-")
            if len(_content_words(text)) < 2:
                text = ""

        # questions (a request to move on phrased as a question is a move, not a question)
        rest = re.sub(r"^\W*(?:(?:here are )?(?:some )?(?:test )?examples?(?: first)?|for example|e\.?g\.?|"
                      r"test with)\W*$", "", text.strip(), flags=re.I | re.M).strip()
        if (target or back) and len(_content_words(rest)) < 3 and not _cue(rest)[0]:
            rest = ""
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", rest) if s.strip()]
        questions = [s for s in sentences if s.endswith("?") and _QUESTION_START.match(s)
                     or s.endswith("?") and len(s.split()) <= 12
                     or re.match(r"^(?:explain|tell me (?:what|why|how|about)|can you explain)\b", s, re.I)]
        if questions and not target:
            result.intents.append("question")
            result.question = " ".join(questions)
            rest = " ".join(s for s in sentences if s not in questions)
        elif questions:
            rest = " ".join(s for s in sentences if s not in questions)

        # feedback on outputs or on the draft
        if rest and _FEEDBACK.search(rest) and not correction:
            strongest = max((_cue(c)[1] for c in _split(rest)), default=0.0)
            if context.get("has_draft") or strongest < 0.84:
                result.intents.append("feedback")
                result.feedback = rest.strip()
                rest = ""
        if rest and context.get("has_draft") and stage in ("evaluate", "test", "refine", "final") \
                and not correction and not result.fields:
            labelled = _cue(rest)
            if labelled[1] < 0.95:  # only a labelled answer changes a field after the draft; the rest is feedback
                result.intents.append("feedback")
                result.feedback = rest.strip()
                rest = ""

        # field answers
        if rest.strip():
            self._fields(rest, result, asking, correction, context)
        if correction:
            result.intents.append("correction")
            if not result.target_field and result.fields:
                result.target_field = next(iter(result.fields))
        if not result.intents:
            result.intents = ["off_topic"] if n else ["accept"]
        result.intents = list(dict.fromkeys(result.intents))
        return result

    def _fields(self, rest: str, result: Interpretation, asking: str, correction: bool,
                context: dict[str, Any]) -> None:
        clauses = _split(rest)
        found: list[tuple[str, float, str]] = []
        loose: list[str] = []
        for clause in clauses:
            name, strength, value = _cue(clause)
            if name and asking and len(clauses) == 1 and strength < 0.85 and name != asking:
                name = ""  # a weak cue does not beat the question just asked
            if name:
                found.append((name, strength, _clean_value(value)))
            elif _clean_value(clause):
                loose.append(_clean_value(clause))
        if loose:
            joined = ", ".join(loose)
            ranked = self._nearest(joined)
            top = ranked[0] if ranked else ("", 0.0)
            by = dict(ranked)
            best_field = next(((label, sim) for label, sim in ranked if label in FIELD_NAMES), ("", 0.0))
            if correction and not found and not asking:
                last = context.get("last_field") or ""
                if last:
                    found.append((last, 0.85, joined))
                    loose = []
            if loose and top[0] == "off_topic" and top[1] > by.get(asking, 0.0) + 0.05 and not found:
                result.intents.append("off_topic")
            elif loose and top[0] == "question" and top[1] > 0.5 and not found and not asking:
                result.intents.append("question")
                result.question = joined
            elif loose and asking and not found:
                other, sim = best_field
                if other and other != asking and sim >= 0.45 and sim > by.get(asking, 0.0) + 0.12:
                    # the designer seems to answer another question than the one asked: ask first
                    result.ask = {"field": other, "value": joined, "asked": asking}
                    result.intents.append("answer")
                    result.confidence[other] = round(min(sim, ASK_BELOW - 0.01), 3)
                else:
                    found.append((asking, 0.8, joined))
            elif loose and asking:
                # extra words beside cued answers: to the field being asked (constraints add up)
                if asking not in {f for f, _, _ in found}:
                    found.append((asking, 0.6, joined))
                elif asking == "constraints":
                    found.insert(0, (asking, 0.6, joined))
            elif loose and not found:
                other = top[0] if top[0] in FIELD_NAMES else ""
                if other and top[1] >= 0.5:
                    result.ask = {"field": other, "value": joined, "asked": ""}
                    result.intents.append("answer")
                    result.confidence[other] = round(min(top[1], ASK_BELOW - 0.01), 3)
                elif not result.intents:
                    result.intents.append("off_topic")
        found = [x for pair in found for x in _split_users(*pair)]
        for name, strength, value in found:
            if not value:
                continue
            if name in result.fields and name == "constraints":
                result.fields[name] += "; " + value
            elif name in result.fields:
                if strength <= result.confidence.get(name, 0):
                    continue
                result.fields[name] = value
            else:
                result.fields[name] = value
            result.confidence[name] = max(strength, result.confidence.get(name, 0.0))
        if result.fields:
            result.intents.append("answer")
