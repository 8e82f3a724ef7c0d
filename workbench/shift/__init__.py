"""Behaviour shift after instruction tuning (Wu et al., NAACL'24, "From Language Modeling to Instruction
Following"): attribution, attention and feed-forward views comparing a base LM with its instruct sibling."""
