"""Text-to-image prompt refinement (UF-FGTG, arXiv 2402.12760, done our way): a coarse prompt is rewritten
by a chat model with retrieved few-shot pairs, over-generated and thinned by maximal marginal relevance,
rendered beside the original with the same seed, and scored per metric with provenance.

Modules: `inputs` (checks), `refiner` (few-shot retrieval + rewriting), `diversity` (MMR), `baseline`
(keyword modifiers, Promptist/MagicPrompt style), `diff` (word diff), `scoring` (per-metric scores),
`session` (the tree of rounds), `service` (what the tab, the CLI and the batch call), `batch`, `train`.
"""
