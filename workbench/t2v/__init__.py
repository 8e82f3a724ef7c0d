"""Text->video prompt refinement: Prompt-A-Video reward-guided evolution (evolve.py), VPO principle-checked
rewriting (principles.py), per-dimension video rewards against the ORIGINAL prompt (rewards.py), final
render and downloads (media.py), preference pairs for SFT/DPO (pairs.py), training (train.py) and the batch
CLI (batch.py, `python -m workbench.t2v`). The tab's flows are in flows.py."""
