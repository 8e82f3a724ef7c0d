"""Promptor (arXiv 2310.08101): a conversational agent that interviews a designer about a text-entry feature,
drafts a prompt template with named placeholders, tests it on the designer's examples and refines it.

`agent` is the stage machine over a JSON-able state dict; `interpret` (types, the LLM interpreter) and `rules`
(the offline one: rules + MiniLM similarity to `corpus`) read a designer's message; `converse` applies a reading
to the stage machine; `speech` holds the agent's own sentences and the check on a model's phrasing; `template`
assembles and validates templates; `flows` holds the flows both front ends call (streamed replies, test rounds,
metrics, blinded comparison); `store` keeps sessions under a resume code; `export` writes the template and the
transcript; `scripts` runs the scripted designers (`capable_fake` stands in for a capable chat model over the
OpenAI API). `python -m workbench.promptor scripts|corpus` prints their tables."""
