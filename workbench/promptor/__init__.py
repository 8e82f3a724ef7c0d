"""Promptor (arXiv 2310.08101): a conversational agent that interviews a designer about a text-entry feature,
drafts a prompt template with named placeholders, tests it on the designer's examples and refines it.

`agent` is the stage machine over a JSON-able state dict; `template` assembles and validates templates;
`flows` holds the flows both front ends call (streamed replies, test rounds, metrics, blinded comparison);
`store` keeps sessions under a resume code; `export` writes the template and the transcript."""
