"""ZeroGPU mode under a stand-in `spaces` module (written here, first on PYTHONPATH of a subprocess).

The stand-in records when it was imported (torch must not be loaded yet), which functions `spaces.GPU` wraps
and the duration each call asks for, and whether the calling thread is inside a decorated call. The app is
started as on a Space (`app.prepare`: build the context, preload the profile, build the Blocks), then the
landed tabs' flows run: every model load must come before the first GPU call and none inside one, and every
piece of model work must run inside one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STANDIN = '''
"""Stand-in for the `spaces` package (tests only): records what the app asks of ZeroGPU."""
import functools, inspect, sys, threading

TORCH_LOADED_AT_IMPORT = "torch" in sys.modules
LOG = []          # ("enter", function name, seconds asked) / ("exit", function name)
DECORATED = []    # the functions spaces.GPU wrapped
_state = threading.local()


def inside():
    return getattr(_state, "depth", 0) > 0


def GPU(task=None, *, duration=None, size=None):
    if not callable(task):
        return lambda fn: GPU(fn, duration=duration, size=size)
    DECORATED.append(task)

    def seconds(args, kwargs):
        return duration(*args, **kwargs) if callable(duration) else duration

    if inspect.isgeneratorfunction(task):
        @functools.wraps(task)
        def wrapper(*args, **kwargs):
            LOG.append(("enter", task.__name__, seconds(args, kwargs)))
            _state.depth = getattr(_state, "depth", 0) + 1
            try:
                yield from task(*args, **kwargs)
            finally:
                _state.depth -= 1
                LOG.append(("exit", task.__name__, None))
    else:
        @functools.wraps(task)
        def wrapper(*args, **kwargs):
            LOG.append(("enter", task.__name__, seconds(args, kwargs)))
            _state.depth = getattr(_state, "depth", 0) + 1
            try:
                return task(*args, **kwargs)
            finally:
                _state.depth -= 1
                LOG.append(("exit", task.__name__, None))
    wrapper.zerogpu = None
    return wrapper
'''

SCRIPT = r'''
import json, sys
import app                     # with SPACES_ZERO_GPU set, app imports `spaces` before anything else
import spaces
assert spaces.__file__.startswith(sys.argv[1]), spaces.__file__  # the stand-in, not the real package

report = {"torch_at_spaces_import": spaces.TORCH_LOADED_AT_IMPORT, "events": []}
events = report["events"]

from backends.base import PROTOCOLS
from workbench import gpu
from workbench.models import ModelLoadError, ModelManager

real_load = ModelManager._load


def load(self, spec, key=None):
    events.append(["load", spec.key, spaces.inside()])
    backend = real_load(self, spec, key)
    instrument(self, spec, backend)
    return backend


def instrument(manager, spec, backend):
    """Record whether each model call runs inside a GPU call: torch forward hooks for real modules, the
    Protocol methods for fake backends."""
    model = getattr(backend, "model", None)
    if model is not None and hasattr(model, "register_forward_pre_hook"):
        model.register_forward_pre_hook(lambda *a: events.append(["work", spec.key + ":forward", spaces.inside()]))
        return
    for kind in manager.capabilities(spec).kinds:
        for name in dir(PROTOCOLS.get(kind, object)):
            if name.startswith("_") or not callable(getattr(backend, name, None)):
                continue
            method = getattr(backend, name)

            def wrapped(*a, __m=method, __n=name, **k):
                events.append(["work", spec.key + ":" + __n, spaces.inside()])
                return __m(*a, **k)
            setattr(backend, name, wrapped)


ModelManager._load = load
_log_start = len(spaces.LOG)
ctx, demo = app.prepare(app.parse_args([]))
report["preloaded"] = sorted(s.role for s in ctx.manager.loaded())
report["profile_roles"] = sorted(ctx.profile("fake").roles)
events.append(["started", "", False])

from workbench.t2i import flows as t2i
state, view = t2i.refine(ctx, "fake", "a cat on a mat", t2i.RewriterInputs(n=3))
events.append(["refined", "", False])
n_refine = len(spaces.LOG)
state, _, view = t2i.render(ctx, "fake", state, [s.text for s in view.slots], t2i.RenderInputs(steps=120, size=64))
events.append(["rendered", "", False])
report["render_calls"] = [e for e in spaces.LOG[n_refine:] if e[0] == "enter"]
report["refine_calls"] = [e for e in spaces.LOG[:n_refine] if e[0] == "enter"]

from workbench.shift import flows as shift
shift.run_analysis(ctx, "fake", "[[Say hello.]] Thanks", "", False, 2, 4, ["gradient × input (the paper's)"], ["attribution"])
events.append(["analysed", "", False])

# A load attempted inside a GPU call is refused with a message saying what to do.
from backends.base import ModelSpec
spec = ModelSpec(role="chat", backend="fake-chat", model_id="fake/not-preloaded")
try:
    gpu.run_on_device(lambda: ctx.manager.get(spec))
    report["refused"] = ""
except ModelLoadError as exc:
    report["refused"] = str(exc)

report["decorated"] = [f.__name__ for f in spaces.DECORATED]
report["gpu_entry_points"] = [f.__name__ for f in gpu.GPU_ENTRY_POINTS]
report["log"] = spaces.LOG
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    standin = tmp_path_factory.mktemp("standin")
    (standin / "spaces").mkdir()
    (standin / "spaces" / "__init__.py").write_text(textwrap.dedent(STANDIN))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "SPACE"))}
    env.update(SPACES_ZERO_GPU="true", SPACE_ID="test/workbench", WORKBENCH_PROFILE="fake",
               WORKBENCH_DEVICE="cpu", WORKBENCH_MEMORY_BUDGET_GB="4", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               WORKBENCH_PERSISTENT_ROOT=str(tmp_path_factory.mktemp("no_data") / "absent"),
               WORKBENCH_DATA_DIR=str(tmp_path_factory.mktemp("data")),
               PYTHONPATH=os.pathsep.join([str(standin), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(standin)], capture_output=True, text=True, env=env,
                         cwd=str(ROOT), timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_spaces_is_imported_before_torch(report):
    assert report["torch_at_spaces_import"] is False


def test_every_gpu_entry_point_is_decorated(report):
    assert set(report["gpu_entry_points"]) == {"_run", "_stream"}
    assert set(report["gpu_entry_points"]) <= set(report["decorated"])


def test_the_whole_profile_is_preloaded_before_the_first_gpu_call(report):
    events = report["events"]
    started = events.index(["started", "", False])
    loads = [e for e in events[:events.index(["analysed", "", False])] if e[0] == "load"]
    assert loads and all(not inside for _, _, inside in loads), loads
    assert all(events.index(e) < started for e in loads), "a model was loaded after start-up"
    assert report["preloaded"] == report["profile_roles"]  # every role, on the device, before serving
    # nothing ran on the GPU before start-up finished
    assert report["log"] and report["refine_calls"], "no GPU call at all"


def test_all_model_work_runs_inside_a_gpu_call(report):
    work = [e for e in report["events"] if e[0] == "work"]
    kinds = {e[1].rsplit(":", 1)[-1] for e in work}
    assert {"generate", "embed", "forward"} <= kinds, kinds  # chat + t2i, embeddings, the shift pair's LMs
    outside = [e for e in work if not e[2]]
    assert not outside, outside


def test_durations_are_sized_by_the_work(report):
    render = max(s for _, name, s in report["render_calls"])
    rewrite = max(s for _, name, s in report["refine_calls"])
    assert all(isinstance(s, int) and s >= 10 for _, _, s in report["render_calls"] + report["refine_calls"])
    assert render > rewrite, (render, rewrite, report["log"])  # one image x 120 steps asks more than one rewrite of 8 sequences


def test_a_load_inside_a_gpu_call_is_refused_clearly(report):
    assert "ZeroGPU does not allow loading a model inside a GPU call" in report["refused"]
    assert "WORKBENCH_PRELOAD" in report["refused"]


def test_estimates_grow_with_images_steps_and_tokens():
    from workbench.gpu import MIN_SECONDS, estimate_seconds
    from workbench.types import GenerationSettings, ImageSettings

    one = estimate_seconds(["a"], ImageSettings(steps=10))
    many = estimate_seconds(["a"] * 8, ImageSettings(steps=30))
    short = estimate_seconds([[{"role": "user", "content": "x"}]], GenerationSettings(max_new_tokens=64))
    assert MIN_SECONDS <= one < many
    assert short < many
    assert estimate_seconds("just text") == 15  # nothing to size by: the default


def test_memory_budget_comes_from_env_or_profile_never_the_emulated_device(monkeypatch):
    from workbench.context import build_context
    from workbench.models import default_budget_bytes

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    monkeypatch.delenv("WORKBENCH_MEMORY_BUDGET_GB", raising=False)
    with pytest.raises(ValueError, match="ZeroGPU mode needs a memory budget"):
        default_budget_bytes("cuda")
    ctx = build_context(profile="gpu", device="cpu")
    assert ctx.manager.budget_bytes == 40 * 1024**3  # the gpu profile's memory_budget_gb
    monkeypatch.setenv("WORKBENCH_MEMORY_BUDGET_GB", "3")
    assert build_context(profile="gpu", device="cpu").manager.budget_bytes == 3 * 1024**3


def test_preload_roles_from_the_environment(monkeypatch):
    from workbench.context import build_context, preload_roles

    ctx = build_context(profile="fake", device="cpu")
    monkeypatch.setenv("WORKBENCH_PRELOAD", "chat, embeddings")
    assert preload_roles(ctx.profile("fake")) == ["chat", "embeddings"]
    assert [s.role for s in ctx.preload()] == ["chat", "embeddings"]
    monkeypatch.setenv("WORKBENCH_PRELOAD", "chat,nope")
    with pytest.raises(ValueError, match="does not have: nope"):
        preload_roles(ctx.profile("fake"))


def test_quota_error_becomes_a_user_facing_message_pointing_to_examples(monkeypatch):
    from workbench import gpu
    from workbench.actions import user_message

    class FakeGrError(Exception):  # what spaces raises: gr.Error(message, title="ZeroGPU quota exceeded")
        title = "ZeroGPU quota exceeded"

    def boom(*a, **k):
        raise FakeGrError("You have exceeded your free ZeroGPU quota (60s requested vs. 12s left).")

    monkeypatch.setattr(gpu, "_run_gpu", boom)
    gpu._quota_hit.clear()
    assert not gpu.quota_exhausted()  # so the check below proves the quota error set it
    try:
        with pytest.raises(gpu.GpuUnavailable) as err:
            gpu.run_on_device(lambda: None)
        message, kind = user_message("t2i_render", err.value)
        assert kind == "input" and "Cached examples" in message and "60s requested" in message
        assert gpu.quota_exhausted() and "quota" in gpu.gpu_unavailable_reason()
    finally:
        gpu._quota_hit.clear()


def test_a_stream_pulled_from_several_threads_keeps_each_threads_depth():
    """Gradio may pull a streamed reply's items from different worker threads. Each item is made inside the GPU
    call on the thread that pulls it, and no thread is left marked as inside one (the depth was raised on the
    first thread and lowered on the last, so one thread stayed "inside" and later loads were refused there)."""
    import threading

    from workbench import gpu

    seen: list[bool] = []

    def reply():
        for i in range(3):
            seen.append(gpu.inside_gpu_call())
            yield i

    stream = gpu.stream_on_device(reply)
    after: list[bool] = []

    def pull(out: list) -> None:
        out.append(next(stream, None))
        after.append(gpu.inside_gpu_call())

    got: list = []
    for _ in range(4):  # three items, then the end, each pulled by a new thread
        worker = threading.Thread(target=pull, args=(got,))
        worker.start()
        worker.join()
    assert got == [0, 1, 2, None]
    assert seen == [True, True, True]
    assert after == [False] * 4 and not gpu.inside_gpu_call()
