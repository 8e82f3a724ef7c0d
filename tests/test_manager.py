"""The model manager: eviction under a budget, one load under concurrency, failures that leave it usable."""

import threading
import time

import pytest

from backends.base import GenerationSettings, ModelSpec
from workbench.models import ModelLoadError, ModelManager
from backends.registry import Registry

MIB = 2**20


def fake(role, model, memory_mib=10, **options):
    return ModelSpec.from_dict(role, {"backend": "fake-chat", "model": model,
                                      "options": {"memory_bytes": memory_mib * MIB, **options}})


class SlowBackend:
    """Counts real constructions; sleeps in load so concurrent callers overlap."""

    loads = 0
    lock = threading.Lock()

    def __init__(self, spec):
        self.spec, self.device, self.dtype = spec, "cpu", "float32"
        self.random_weights = False

    @classmethod
    def capabilities(cls, spec):
        from backends.base import Capabilities

        return Capabilities(kinds=("chat",))

    @classmethod
    def load(cls, spec, *, device, dtype):
        time.sleep(0.3)
        with cls.lock:
            cls.loads += 1
        return cls(spec)

    def unload(self):
        pass

    def memory_bytes(self):
        return MIB


def test_evicts_least_recently_used_to_stay_under_budget():
    m = ModelManager(budget_bytes=25 * MIB, device="cpu")
    a, b, c = fake("chat", "fake/a"), fake("t2i", "fake/b"), fake("t2v", "fake/c")
    m.get(a)
    m.get(b)
    m.get(a)  # a is now more recently used than b
    m.get(c)  # 30 MiB > 25 MiB: b (the least recently used) goes
    assert m.is_loaded(a) and m.is_loaded(c) and not m.is_loaded(b)
    assert m.resident_bytes() <= m.budget_bytes
    assert m.status(b).state == "not loaded"


def test_models_in_use_are_not_evicted():
    a, b, c = fake("chat", "fake/a"), fake("t2i", "fake/b"), fake("t2v", "fake/c")
    m = ModelManager(budget_bytes=25 * MIB, device="cpu")
    with m.use(a):
        m.get(b)
        m.get(c)  # 30 MiB > 25: a is the least recently used but busy, so b (idle) goes instead
        assert m.is_loaded(a) and m.is_loaded(c) and not m.is_loaded(b)
    small = ModelManager(budget_bytes=15 * MIB, device="cpu")
    with small.use(a):
        small.get(b)  # over budget, but a is busy: nothing idle to evict except b itself, which is kept
        assert small.is_loaded(a) and small.is_loaded(b) and small.resident_bytes() == 20 * MIB
    small.get(c)  # now a and b are idle: both must go for c to fit
    assert [small.is_loaded(s) for s in (a, b, c)] == [False, False, True]
    assert small.resident_bytes() == 10 * MIB


def test_a_model_larger_than_the_budget_is_refused_with_a_clear_message():
    m = ModelManager(budget_bytes=5 * MIB, device="cpu")
    with pytest.raises(ModelLoadError, match=r"needs 0\.01 GiB, more than the memory budget"):
        m.get(fake("chat", "fake/big", memory_mib=10))
    assert not m.loaded()


def test_eight_threads_asking_at_once_load_once():
    reg = Registry("backend")
    reg.register("slow", f"{__name__}:SlowBackend")
    m = ModelManager(budget_bytes=100 * MIB, device="cpu", registry=reg)
    spec = ModelSpec.from_dict("chat", {"backend": "slow", "model": "x"})
    SlowBackend.loads = 0
    barrier = threading.Barrier(8)
    got = []

    def worker():
        barrier.wait()
        got.append(m.get(spec))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert SlowBackend.loads == 1
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert m.load_count[spec.key] == 1


def test_eight_threads_share_one_real_tiny_model(monkeypatch):
    """Eight threads released together by a barrier ask for the tiny LM while its load is in progress (the load
    waits until every thread has called get), so the callers truly overlap; one load serves them all."""
    from backends.transformers_lm import TransformersCausalLM

    m = ModelManager(budget_bytes=1024 * MIB, device="cpu")
    spec = ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "tiny:causal-lm"})
    barrier = threading.Barrier(8)
    calling = threading.Semaphore(0)
    real_load = TransformersCausalLM.load.__func__

    def slow_load(cls, spec, *, device, dtype):
        for _ in range(8):  # every thread has entered get() before the load finishes
            assert calling.acquire(timeout=30), "the threads did not all call get() during the load"
        return real_load(cls, spec, device=device, dtype=dtype)

    monkeypatch.setattr(TransformersCausalLM, "load", classmethod(slow_load))
    got = []

    def worker():
        barrier.wait(timeout=30)
        calling.release()
        got.append(m.get(spec))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(got) == 8 and len({id(g) for g in got}) == 1 and m.load_count[spec.key] == 1
    assert got[0].generate(["a cat"], GenerationSettings(max_new_tokens=2, do_sample=False))[0][0].num_tokens <= 2


def test_failed_load_names_the_model_and_leaves_the_manager_usable():
    m = ModelManager(budget_bytes=100 * MIB, device="cpu")
    broken = fake("chat", "fake/broken", fail_load=True)
    with pytest.raises(ModelLoadError) as err:
        m.get(broken)
    assert "'fake/broken'" in str(err.value) and "What to do" in str(err.value)
    assert m.status(broken).state == "failed"
    assert m.get(fake("t2i", "fake/ok")) is not None  # other models still load
    missing = ModelSpec.from_dict("chat", {"backend": "transformers-lm", "model": "no-such-org/no-such-model"})
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-model"):
        m.get(missing)
    with pytest.raises(ModelLoadError, match="unknown backend 'nope'"):
        m.get(ModelSpec.from_dict("chat", {"backend": "nope", "model": "x"}))


def test_work_on_one_device_is_serialised():
    m = ModelManager(budget_bytes=100 * MIB, device="cpu")
    spec = fake("chat", "fake/a")
    active, peak, entered = [0], [0], []
    lock = threading.Lock()
    device = m.device_lock("cpu")
    first_inside, release = threading.Event(), threading.Event()

    def job(backend):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            entered.append(threading.get_ident())
        if len(entered) == 1:  # the first job holds the device until the other three are queued behind it
            first_inside.set()
            assert release.wait(60)
        with lock:
            active[0] -= 1

    threads = [threading.Thread(target=m.run, args=(spec, job)) for _ in range(4)]
    for t in threads:
        t.start()
    assert first_inside.wait(60)
    deadline = time.monotonic() + 60
    while len(device._cond._waiters) < 3:  # parked on the device's queue (a Condition), not merely unscheduled
        assert time.monotonic() < deadline, f"only {len(device._cond._waiters)} job(s) waited for the device"
        time.sleep(0.001)
    assert len(entered) == 1  # three queued, one inside
    release.set()
    for t in threads:
        t.join(60)
    assert peak[0] == 1 and len(entered) == 4


def test_unload_refuses_a_busy_model_and_frees_an_idle_one():
    m = ModelManager(budget_bytes=100 * MIB, device="cpu")
    spec = fake("chat", "fake/a")
    with m.use(spec):
        with pytest.raises(RuntimeError, match="in use"):
            m.unload(spec)
    assert m.unload(spec) and not m.is_loaded(spec)
    assert m.unload(spec) is False


def test_bad_budget_and_device_are_refused():
    with pytest.raises(ValueError, match="above 0"):
        ModelManager(budget_bytes=-1, device="cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        ModelManager(budget_bytes=MIB, device="cuda")
