"""Prompt-CAM (Chowdhury et al., CVPR'25, Imageomics/Prompt_CAM): one learnable prompt per class at every layer of a
frozen ViT; each class scores from its own prompt's output, so the true class's prompt attends to the patches that
set it apart (its traits). Also: the synthetic fine-grained dataset we measure on, training, Grad-CAM and attention
rollout baselines, the benchmark metrics, and the tab's flows."""
