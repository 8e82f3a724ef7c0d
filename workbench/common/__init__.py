"""What several tabs share, in one place of the core, so that no tab package imports another
(import-linter's independence contract in pyproject.toml):

- `inputs`: the checks on user input (prompt text, counts, fractions, server URLs), each a ValueError naming
  the argument and its range;
- `diff`: the word diff of a rewrite against the user's prompt;
- `diversity`: MMR selection and pairwise diversity over embeddings;
- `guard`: the quality gate and the encoder-window fit for rewrites;
- `refiner`: the chat-model rewriter (few-shot retrieval, over-generation, candidate parsing and normalising);
- `session`: the refinement tree (rounds, picks, branches) kept as plain data;
- `scores`: the score types (Score, ImageScores), weight checks and the weighted total, for any metric table;
- `shards`: reading prompt files, sharding across processes, resumable shard output;
- `choice`: which chat model a tab talks to (`ModelChoice`), whose default role each caller names.
"""
