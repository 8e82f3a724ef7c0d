"""Model backends, one file each, behind the small interfaces in `backends.base`.

BACKENDS maps a backend name (as written in profiles) to a lazy "module:Class" string:
importing this package imports no backend module and no heavy library.
"""

from backends.registry import Registry

BACKENDS = Registry("backend")
for _name, _target in {
    "transformers-lm": "backends.transformers_lm:TransformersCausalLM",
    "openai-chat": "backends.openai_chat:OpenAIChat",
    "sentence-embeddings": "backends.sentence_embeddings:SentenceEmbeddings",
    "lm-layer-embeddings": "backends.lm_embeddings:LMLayerEmbeddings",
    "diffusers-t2i": "backends.diffusers_t2i:DiffusersTextToImage",
    "diffusers-t2v": "backends.diffusers_t2v:DiffusersTextToVideo",
    "clip-scorer": "backends.clip_scorer:ClipScorer",
    "pickscore": "backends.pickscore:PickScore",
    "image-reward": "backends.image_reward:ImageReward",
    "hpsv2": "backends.hpsv2:HPSv2",
    "vit": "backends.vit:VisionTransformer",
    "safety-head": "backends.safety_head:SafetyHead",
    "safety-encoder": "backends.safety_encoder:SafetyEncoder",
    "guard-lm": "backends.guard_lm:GuardLM",
    "fake-chat": "backends.fake:FakeChat",
    "fake-embeddings": "backends.fake:FakeEmbeddings",
    "fake-t2i": "backends.fake:FakeTextToImage",
    "fake-t2v": "backends.fake:FakeTextToVideo",
    "fake-scorer": "backends.fake:FakeScorer",
    "fake-vit": "backends.fake:FakeVisionTransformer",
    "fake-safety": "backends.fake:FakeSafety",
}.items():
    BACKENDS.register(_name, _target)
