"""The layering issue's guarantees: lookups never load, streams hold their model, nested use() works, loads do
not block the manager, Ctrl-C is not swallowed, per-call randomness, and every backend honours its Protocol."""

from __future__ import annotations

import inspect
import threading
import time

import pytest

from backends import BACKENDS
from backends.base import PROTOCOLS, GenerationSettings, ImageSettings, ModelSpec
from backends.registry import Registry
from tests.conftest import spec
from workbench.models import ManagedModel, ModelLoadError, ModelManager

MIB = 2**20


def test_typing_in_a_candidate_box_never_loads_the_t2i_pipeline(profiles):
    from workbench.context import AppContext
    from workbench.t2i import flows
    from workbench.common.session import RefinementSession

    t2i = spec("t2i", "diffusers-t2i", "tiny:sd")
    ctx = AppContext(ModelManager(budget_bytes=2**30, device="cpu"), {"p": profiles["fake"].with_role("t2i", t2i)},
                     "p")
    state = RefinementSession.start("a cat", [{"text": "a cat, soft light"}]).to_dict()
    long = "a cat on a sofa " * 30
    for typed in ("a cat, soft", "a cat, soft light, oil painting", long):
        view = flows.edit(ctx, "p", state, typed)
    assert "77-token limit" in view.flag and "sofa" in view.flag  # the tail is named
    assert "fits the text encoder (77 tokens)" in flows.edit(ctx, "p", state, "a cat").flag
    managed = ManagedModel(ctx.manager, t2i)
    assert managed.capabilities.prompt_window and managed.generate and managed.device  # lookups only
    assert not ctx.manager.is_loaded(t2i) and ctx.manager.load_count == {}


def test_a_stream_holds_its_model_and_device_until_it_ends_or_is_closed(manager):
    chat = spec("chat", "fake-chat", "fake/chat")
    managed = ManagedModel(manager, chat)
    settings = GenerationSettings(max_new_tokens=6, seed=1)
    pieces = managed.stream("a cat on a sofa", settings)
    first = next(pieces)
    assert first and manager.status(chat).in_use == 1
    assert manager.device_lock("cpu").locked()
    with pytest.raises(RuntimeError, match="in use by a running job"):
        manager.unload(chat)
    rest = list(pieces)
    assert " ".join([first, *rest]).split()  # the reply came through whole
    assert manager.status(chat).in_use == 0 and not manager.device_lock("cpu").locked()
    # closing a stream early (the user left) releases it too
    pieces = managed.stream("a dog", settings)
    next(pieces)
    pieces.close()
    assert manager.status(chat).in_use == 0 and not manager.device_lock("cpu").locked()
    assert manager.unload(chat)


def test_one_thread_can_hold_two_models_of_one_device(manager):
    chat, emb = spec("chat", "fake-chat", "fake/chat"), spec("embeddings", "fake-embeddings", "fake/emb")
    done = threading.Event()

    def nested():
        with manager.use(chat) as c, manager.use(emb) as e:
            c.generate(["hi"], GenerationSettings(max_new_tokens=3))
            e.embed(["hi"])
        done.set()

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    assert done.wait(10), "nested manager.use() on one device deadlocked"
    # another thread still waits for the device while one holds it
    order: list[str] = []
    with manager.use(chat):
        def other_use():
            with manager.use(emb):
                order.append("other entered")

        other = threading.Thread(target=other_use, daemon=True)
        other.start()
        lock = manager.device_lock("cpu")
        deadline = time.monotonic() + 30
        while len(lock._cond._waiters) < 1:  # the other thread is parked on the device's queue, not just slow
            assert time.monotonic() < deadline and other.is_alive(), "the other thread never waited for the device"
            time.sleep(0.001)
        order.append("holder released")
    other.join(30)
    assert order == ["holder released", "other entered"]


class _SlowLoad:
    started = threading.Event()
    release = threading.Event()

    def __init__(self, spec):
        self.spec, self.device, self.dtype, self.random_weights = spec, "cpu", "float32", False

    @classmethod
    def capabilities(cls, spec):
        from backends.base import Capabilities

        return Capabilities(kinds=("chat",))

    @classmethod
    def load(cls, spec, *, device, dtype):
        if spec.option("interrupt"):
            raise KeyboardInterrupt
        cls.started.set()
        cls.release.wait(10)
        return cls(spec)

    def unload(self):
        pass

    def memory_bytes(self):
        return MIB


def test_a_slow_load_does_not_block_the_manager_and_ctrl_c_is_not_swallowed():
    reg = Registry("backend")
    reg.register("slow", f"{__name__}:_SlowLoad")
    reg.register("fake-chat", "backends.fake:FakeChat")
    m = ModelManager(budget_bytes=100 * MIB, device="cpu", registry=reg)
    slow = ModelSpec.from_dict("chat", {"backend": "slow", "model": "big"})
    loader = threading.Thread(target=lambda: m.get(slow), daemon=True)
    loader.start()
    assert _SlowLoad.started.wait(5)
    assert m.status(slow).state == "loading"
    with m.use(spec("chat", "fake-chat", "fake/other")) as other:  # another model loads and runs meanwhile
        assert other.generate(["x"], GenerationSettings(max_new_tokens=2))
    # proven by order, not by a clock: the slow load is held until `release`, which is only set below
    assert m.status(slow).state == "loading" and not _SlowLoad.release.is_set()
    _SlowLoad.release.set()
    loader.join(5)
    assert m.is_loaded(slow)
    with pytest.raises(KeyboardInterrupt):
        m.get(ModelSpec.from_dict("chat", {"backend": "slow", "model": "x", "options": {"interrupt": True}}))
    with pytest.raises(ModelLoadError):
        m.get(ModelSpec.from_dict("chat", {"backend": "fake-chat", "model": "x", "options": {"fail_load": True}}))


def test_sampling_depends_only_on_the_calls_seed_even_when_others_use_the_global_rng():
    import torch

    from backends.transformers_lm import TransformersCausalLM

    lm = spec("chat", "transformers-lm", "tiny:causal-lm")
    a = TransformersCausalLM.load(lm, device="cpu", dtype="float32")
    b = TransformersCausalLM.load(lm, device="cpu", dtype="float32")  # two instances: truly concurrent calls
    prompts = ["a cat on a sofa", "a red car"]

    def sample(backend, seed):
        out = backend.generate(prompts, GenerationSettings(max_new_tokens=12, seed=seed, num_return_sequences=2))
        return [[g.text for g in row] for row in out]

    solo = {1: sample(a, 1), 2: sample(a, 2)}
    assert solo[1] != solo[2] and solo[1][0][0] != solo[1][0][1]  # seeds and samples differ
    results: dict[int, list] = {}
    stop = threading.Event()

    def noise():  # another user's work reseeding and drawing from the process-wide RNG
        while not stop.is_set():
            torch.manual_seed(int(time.time() * 1e6) % 2**31)
            torch.rand(64)

    def run(backend, seed):
        for _ in range(3):
            results.setdefault(seed, []).append(sample(backend, seed))

    threads = [threading.Thread(target=noise), threading.Thread(target=run, args=(a, 1)),
               threading.Thread(target=run, args=(b, 2))]
    for t in threads:
        t.start()
    threads[1].join(120)
    threads[2].join(120)
    stop.set()
    threads[0].join(5)
    assert results[1] == [solo[1]] * 3 and results[2] == [solo[2]] * 3


def test_building_a_tiny_model_leaves_the_global_rng_as_it_was():
    import torch

    from backends import tiny

    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    tiny.tiny_causal_lm(seed=3)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------------------- the Protocol contract

TINY_SPECS = {
    "transformers-lm": "tiny:causal-lm",
    "sentence-embeddings": "tiny:text-embedder",
    "diffusers-t2i": "tiny:sd",
    "diffusers-t2v": "tiny:animatediff",
    "clip-scorer": "tiny:clip",
    "pickscore": "tiny:clip",
    "hpsv2": "tiny:clip",
    "image-reward": "tiny:blip-reward",
    "vit": "tiny:vit",
    "safety-head": "tiny:text-embedder",
    "safety-encoder": "tiny:text-embedder",
    "guard-lm": "tiny:guard-lm",
}


def _contract_spec(name: str, openai_url: str) -> ModelSpec:
    if name == "openai-chat":
        return spec("chat", name, "tiny-remote", base_url=openai_url)
    if name.startswith("fake-"):
        return spec("role", name, f"fake/{name}")
    if name == "lm-layer-embeddings":
        return spec("role", name, "tiny:causal-lm", layer=1)
    return spec("role", name, TINY_SPECS[name])


def _signature_matches(protocol_member, member) -> bool:
    want = [p for p in inspect.signature(protocol_member).parameters if p not in ("self", "cls")]
    have = [p for p in inspect.signature(member).parameters if p not in ("self", "cls")]
    return have[: len(want)] == want


@pytest.fixture(scope="module")
def openai_url():
    """The OpenAI-compatible server over a fake chat model, so the remote backend is checked for real."""
    from workbench import openai_server

    m = ModelManager(budget_bytes=2**30, device="cpu")
    handle = openai_server.serve(m, spec("chat", "fake-chat", "fake/chat"), model_name="tiny-remote")
    yield handle.url
    handle.close()


def test_every_registered_backend_honours_the_protocols_it_declares(manager, openai_url):
    checked = []
    for name in BACKENDS.names():
        cls = BACKENDS.resolve(name)
        s = _contract_spec(name, openai_url)
        caps = cls.capabilities(s)
        assert caps.kinds, f"{name} declares no Protocol"
        backend = manager.get(s)
        assert isinstance(backend.random_weights, bool) and backend.device and backend.dtype
        for kind in caps.kinds:
            protocol = PROTOCOLS[kind]
            assert isinstance(backend, protocol), f"{name} claims {kind} but lacks a member of {protocol.__name__}"
            for member_name, member in vars(protocol).items():
                if callable(member) and not member_name.startswith("_") and hasattr(cls, member_name):
                    assert _signature_matches(member, getattr(cls, member_name)), (name, member_name)
        if caps.prompt_window:
            window = cls.load_prompt_window(s)
            assert window.limit == 77 and window.split("a cat") == ("a cat", "")
        if "chat" in caps.kinds:
            out = backend.generate(["hello there"], GenerationSettings(max_new_tokens=4, seed=0))
            assert len(out) == 1 and out[0][0].provenance.model_id == s.model_id
            if caps.streaming:
                assert "".join(backend.stream("hello there", GenerationSettings(max_new_tokens=4, seed=0)))
        if "t2i" in caps.kinds:
            [image] = backend.generate(["a cat"], ImageSettings(steps=1, width=32, height=32))
            assert image.image.size == (32, 32) and image.provenance.seed == 0
        if "image_text" in caps.kinds:
            from PIL import Image

            picture = Image.new("RGB", (32, 32), (200, 10, 10))
            aesthetic = backend.aesthetic([picture])
            assert (aesthetic is not None) == caps.aesthetic
            # ImageReward reads 35 BERT tokens, as its authors' code does; the CLIP family 77
            assert backend.text_token_limit() == (35 if name == "image-reward" else 77)
        if "safety" in caps.kinds:
            results = backend.classify(["a cat on a sofa", "a pipe bomb"])
            assert len(results) == 2 and all(isinstance(r.safe, bool) for r in results)
            assert all(r.safe == (not r.categories) for r in results)
            assert results[0].provenance.model_id == s.model_id
        checked.append(name)
    assert set(checked) == set(BACKENDS.names())
