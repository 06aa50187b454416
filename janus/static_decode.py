"""Compiled decode for the rollout samplers: a preallocated KV cache and one fixed-shape step under torch.compile.

`janus.sampling` keeps the eager loop as the reference; `decode="compiled"` there runs the same prefill, then this
module's step: every tensor the step touches (KV cache, attention mask, positions, outputs, sampling noise) is
allocated once per call and written in place, the sampled token is chosen on device (CFG mix, temperature, top-k,
exponential race with noise drawn by `janus.draw.draw_race_noise` outside the graph), and nothing in a step
reads a tensor value on the host. On CUDA the step is compiled with mode="reduce-overhead" (CUDA graphs), on CPU
with inductor's default mode. The cache length is rounded up to `LENGTH_BUCKET`, so prompts of different lengths
reuse one compiled graph; a failed compilation falls back to the eager loop with one warning.
It runs the Llama decoder layers of transformers' Janus language model, called with this module's cache.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers import DynamicCache

from janus.draw import chosen_logps, draw_race_noise, filter_logits, race_tokens
from janus.forward import all_rows_ended, cfg_mix, prefill

if TYPE_CHECKING:
    from transformers import JanusForConditionalGeneration

logger = logging.getLogger(__name__)

# Cache lengths are multiples of this, so prompt lengths within one bucket share a compiled step.
LENGTH_BUCKET = 128
# The answer loop asks the host whether every row has ended once per this many steps (one sync per check).
ANSWER_CHECK_EVERY = 16


def default_decode(device: torch.device | str) -> str:
    """The decode a CLI/trainer should default to: compiled (CUDA graphs) on CUDA, eager elsewhere."""
    return "compiled" if torch.device(device).type == "cuda" else "eager"


def bucketed_length(length: int) -> int:
    """`length` rounded up to a multiple of LENGTH_BUCKET (the compiled step's static cache length)."""
    return -(-length // LENGTH_BUCKET) * LENGTH_BUCKET


class StaticKVCache:
    """Per-layer keys/values [R, H_kv, S, hd], preallocated and written in place at `write_index` [1].

    Implements the one method transformers' Llama attention calls on its cache (`update`), returning the whole
    buffers: unwritten columns are masked out by the step's attention mask, so every step has the same shapes.
    """

    def __init__(self, prefix: DynamicCache, length: int):
        self.keys, self.values = [], []
        for layer in prefix.layers:
            rows, heads, prompt_len, head_dim = layer.keys.shape
            for source, store in ((layer.keys, self.keys), (layer.values, self.values)):
                buffer = source.new_zeros(rows, heads, length, head_dim)
                buffer[:, :, :prompt_len] = source
                store.append(buffer)
        self.write_index = torch.full((1,), prompt_len, dtype=torch.long, device=self.keys[0].device)

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        self.keys[layer_idx].index_copy_(2, self.write_index, key)
        self.values[layer_idx].index_copy_(2, self.write_index, value)
        return self.keys[layer_idx], self.values[layer_idx]

    def tensors(self) -> list[torch.Tensor]:
        return [*self.keys, *self.values, self.write_index]


@dataclass
class DecodeState:
    """Everything one compiled step reads or writes, preallocated for the whole loop."""

    hidden: torch.Tensor  # [R, D] last hidden state (predicts the next token)
    attn_bias: torch.Tensor  # [R, 1, 1, S] additive mask: 0 where a row attends, dtype-min elsewhere
    positions: torch.LongTensor  # [R, 1] position id of the next token
    step: torch.LongTensor  # [1] index of the token being sampled
    noise: torch.Tensor  # [N, V] Exp(1) draws for this step, refilled outside the graph
    tokens: torch.LongTensor  # [N, L]
    logps: torch.Tensor  # [N, L] float32 (zeros unless requested)
    keep: torch.Tensor  # [N, L] bool: row still running when the token was drawn (answers)
    finished: torch.Tensor  # [N] bool (answers)

    def tensors(self) -> list[torch.Tensor]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def _new_state(
    hidden: torch.Tensor,
    prompt_mask: torch.Tensor,
    next_positions: torch.Tensor,
    length: int,
    n: int,
    steps: int,
    vocab: int,
) -> DecodeState:
    rows, prompt_len = prompt_mask.shape
    attn_bias = hidden.new_full((rows, 1, 1, length), torch.finfo(hidden.dtype).min)
    attn_bias[:, 0, 0, :prompt_len].masked_fill_(prompt_mask.bool(), 0.0)
    device = hidden.device
    return DecodeState(
        hidden=hidden.clone(),
        attn_bias=attn_bias,
        positions=next_positions.clone(),
        step=torch.zeros(1, dtype=torch.long, device=device),
        noise=torch.ones(n, vocab, device=device),
        tokens=torch.zeros(n, steps, dtype=torch.long, device=device),
        logps=torch.zeros(n, steps, device=device),
        keep=torch.zeros(n, steps, dtype=torch.bool, device=device),
        finished=torch.zeros(n, dtype=torch.bool, device=device),
    )


# ---------------------------------------------------------------------------------------------------------------------
# The captured steps (no host reads, fixed shapes, everything written in place).
# ---------------------------------------------------------------------------------------------------------------------


def _advance(
    model: JanusForConditionalGeneration, kv: StaticKVCache, state: DecodeState, embeds: torch.Tensor
) -> None:
    """Append `embeds` [R, 1, D] at the write position: unmask it, run the decoder layers, move every index on."""
    language_model = model.model.language_model
    state.attn_bias.index_fill_(-1, kv.write_index, 0.0)
    position_embeddings = language_model.rotary_emb(embeds, state.positions)
    hidden = embeds
    for layer in language_model.layers[: language_model.config.num_hidden_layers]:
        hidden = layer(
            hidden,
            attention_mask=state.attn_bias,
            position_ids=state.positions,
            past_key_values=kv,
            position_embeddings=position_embeddings,
        )
    state.hidden.copy_(language_model.norm(hidden)[:, -1])
    kv.write_index.add_(1)
    state.positions.add_(1)
    state.step.add_(1)


def _record(state: DecodeState, tokens: torch.Tensor, logits: torch.Tensor, return_logps: bool) -> None:
    """Write this step's tokens [N] (and their log-probs under `logits` [N, V]) into column `step`."""
    state.tokens.index_copy_(1, state.step, tokens.unsqueeze(1))
    state.keep.index_copy_(1, state.step, (~state.finished).unsqueeze(1))
    if return_logps:
        logps = chosen_logps(logits, tokens).masked_fill(state.finished, 0.0)
        state.logps.index_copy_(1, state.step, logps.unsqueeze(1))


def image_step(
    model: JanusForConditionalGeneration,
    kv: StaticKVCache,
    state: DecodeState,
    cfg_weight: float | None,
    temperature: float,
    top_k: int | None,
    with_uncond: bool,
    return_logps: bool,
) -> None:
    """Sample one image token per prompt from the CFG-mixed head and feed its generation embedding to both rows."""
    n = state.tokens.shape[0]
    logits = model.model.generation_head(state.hidden)  # [R, V]
    mixed = cfg_mix(logits[:n], logits[n:] if with_uncond else None, cfg_weight) / temperature  # [N, V]
    tokens = race_tokens(filter_logits(mixed, top_k, 1.0), state.noise)  # [N]
    _record(state, tokens, mixed, return_logps)
    copies = 2 if with_uncond else 1
    _advance(model, kv, state, model.prepare_embeddings_for_image_generation(tokens.repeat(copies).unsqueeze(-1)))


def answer_step(
    model: JanusForConditionalGeneration,
    kv: StaticKVCache,
    state: DecodeState,
    temperature: float,
    top_k: int | None,
    top_p: float,
    do_sample: bool,
    eos_token_id: int,
    pad_token_id: int,
    return_logps: bool,
) -> None:
    """Sample one answer token per row; ended rows get the pad id; EOS marks a row finished (all on device)."""
    logits = model.lm_head(state.hidden).float() / temperature  # [N, V]
    if do_sample:
        tokens = race_tokens(filter_logits(logits, top_k, top_p), state.noise)
    else:
        tokens = logits.argmax(-1)
    tokens = tokens.masked_fill(state.finished, pad_token_id)  # [N]
    _record(state, tokens, logits, return_logps)
    state.finished.logical_or_(tokens == eos_token_id)
    _advance(model, kv, state, model.get_input_embeddings()(tokens.unsqueeze(-1)))


# ---------------------------------------------------------------------------------------------------------------------
# Compilation: once per run per step function, with one fallback warning.
# ---------------------------------------------------------------------------------------------------------------------

_COMPILED: dict[tuple[str, str], Callable] = {}
_FALLBACK = {"failed": False}


def compiled_step(step: Callable, device: torch.device) -> Callable:
    """`step` under torch.compile, built once per (step, device type): CUDA graphs on CUDA, inductor elsewhere.

    dynamic=False: the shapes are bucketed, so each bucket gets its own static graph (what CUDA graphs need).
    """
    key = (step.__name__, device.type)
    if key not in _COMPILED:
        mode = "reduce-overhead" if device.type == "cuda" else None
        if device.type == "cuda":
            # Each call brings new loop buffers, and under ZeRO-3 every rollout re-gathers the weights to new
            # addresses: the CUDA graph is re-recorded once per call, which must not hit inductor's default cap
            # (after which it silently stops using CUDA graphs for the rest of training).
            triton = torch._inductor.config.triton
            triton.cudagraph_unexpected_rerecord_limit = max(triton.cudagraph_unexpected_rerecord_limit, 10**9)
        _COMPILED[key] = torch.compile(step, mode=mode, dynamic=False, fullgraph=True)
    return _COMPILED[key]


def mark_static(state: DecodeState, kv: StaticKVCache) -> None:
    """Tell dynamo the loop's buffers keep their addresses (so CUDA graphs may write them in place).

    Unguarded: a new call's buffers do not recompile; CUDA-graph trees re-record once when addresses change.
    """
    for tensor in [*state.tensors(), *kv.tensors()]:
        torch._dynamo.mark_static_address(tensor, guard=False)


def _generator_states(generator) -> list[torch.Tensor]:
    generators = generator if isinstance(generator, list | tuple) else [generator]
    return [g.get_state() if g is not None else torch.get_rng_state() for g in generators]


def _restore_generators(generator, states: list[torch.Tensor]) -> None:
    generators = generator if isinstance(generator, list | tuple) else [generator]
    for g, state in zip(generators, states):
        if g is None:
            torch.set_rng_state(state)
        else:
            g.set_state(state)


def with_eager_fallback(compiled: Callable[[], object], eager: Callable[[], object], generator) -> object:
    """Run `compiled`; if compiling (or running) it fails, warn once and run `eager` from the same generator states.

    After one failure every later call goes straight to eager: a broken compiler is not retried every rollout.
    """
    if _FALLBACK["failed"]:
        return eager()
    states = _generator_states(generator)
    try:
        return compiled()
    except Exception as error:  # noqa: BLE001 - any compiler/runtime failure means: use the reference loop
        _FALLBACK["failed"] = True
        logger.warning("Compiled decode failed (%s: %s); falling back to the eager loop.", type(error).__name__, error)
        _restore_generators(generator, states)
        return eager()


def compilation_failed() -> bool:
    """Whether an earlier call fell back to eager (later calls then run eager)."""
    return _FALLBACK["failed"]


def reset_fallback() -> None:
    """Forget an earlier compilation failure and the compiled steps (tests; a new process starts clean anyway)."""
    _FALLBACK["failed"] = False
    _COMPILED.clear()


# ---------------------------------------------------------------------------------------------------------------------
# The loops: prefill eagerly (variable length), then the compiled step.
# ---------------------------------------------------------------------------------------------------------------------


def prefill_static(
    model: JanusForConditionalGeneration, embeds: torch.Tensor, mask: torch.Tensor, steps: int, n: int, vocab: int
) -> tuple[StaticKVCache, DecodeState]:
    """Prompt forward with a growing cache (as eager), copied into a bucketed static cache; the loop's buffers."""
    prefix = DynamicCache(config=model.model.language_model.config)
    hidden, next_positions = prefill(model, embeds, mask, prefix)  # [R, D], [R, 1]
    length = bucketed_length(mask.shape[1] + steps)
    kv = StaticKVCache(prefix, length)
    state = _new_state(hidden, mask, next_positions, length, n, steps, vocab)
    mark_static(state, kv)
    return kv, state


def decode_images(
    model: JanusForConditionalGeneration,
    row_ids: torch.LongTensor,
    mask: torch.Tensor,
    *,
    n: int,
    steps: int,
    cfg_weight: float | None,
    temperature: float,
    top_k: int | None,
    with_uncond: bool,
    generator,
    return_logps: bool,
) -> tuple[torch.LongTensor, torch.Tensor | None]:
    """Image tokens [N, I] (and log-probs) for stacked rows `row_ids` [R, T] with the compiled step."""
    vocab = model.config.vq_config.num_embeddings
    kv, state = prefill_static(model, model.get_input_embeddings()(row_ids), mask, steps, n, vocab)
    step = compiled_step(image_step, state.hidden.device)
    for _ in range(steps):
        draw_race_noise(state.noise, generator)
        step(model, kv, state, cfg_weight, temperature, top_k, with_uncond, return_logps)
    return state.tokens.clone(), state.logps.clone() if return_logps else None


def decode_answers(
    model: JanusForConditionalGeneration,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float,
    do_sample: bool,
    eos_token_id: int,
    pad_token_id: int,
    generator,
    return_logps: bool,
    sync_ranks: bool,
) -> tuple[torch.LongTensor, torch.LongTensor, torch.Tensor | None]:
    """(completion_ids, completion_mask, logps) [N, L], trimmed to the steps the eager loop would have run.

    The host asks whether every row has ended (with `sync_ranks`: on every rank) only every ANSWER_CHECK_EVERY
    steps; the extra steps after the last EOS write pad tokens with keep 0 and are cut off again here, so the
    result equals the eager loop's (which, with `sync_ranks`, runs until the slowest rank has ended).
    """
    n = mask.shape[0]
    vocab = model.config.text_config.vocab_size
    kv, state = prefill_static(model, embeds, mask, max_new_tokens, n, vocab)
    step = compiled_step(answer_step, state.hidden.device)
    for index in range(max_new_tokens):
        if do_sample:
            draw_race_noise(state.noise, generator)
        step(model, kv, state, temperature, top_k, top_p, do_sample, eos_token_id, pad_token_id, return_logps)
        if (index + 1) % ANSWER_CHECK_EVERY == 0 and all_rows_ended(state.finished, sync_ranks):
            break
    # Eager stops after the step at which the last row ended: as many columns as steps with a running row.
    length = state.keep.any(0).sum().reshape(1)
    if sync_ranks:
        torch.distributed.all_reduce(length, op=torch.distributed.ReduceOp.MAX)
    length = int(length)
    ids, keep = state.tokens[:, :length].clone(), state.keep[:, :length].long()
    return ids, keep, state.logps[:, :length].clone() if return_logps else None


def steady_step_op_counts(run: Callable[[], object]) -> tuple[float, float]:
    """Diagnostics: median aten ops and host syncs (`aten::_local_scalar_dense`) per steady-state step of `run`.

    Counted with the profiler (every op through the dispatcher, nested ones and compiled code's extern kernels
    included; a TorchDispatchMode would itself make dynamo recompile). A step starts at its noise draw
    (`aten::exponential_`, so `run` must sample with one shared generator); the prefill, the first step and the last are left out.
    """
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run()
    events = sorted((e.time_range.start, e.name) for e in profile.events() if e.name.startswith("aten::"))
    steps: list[Counter] = []
    for _, name in events:
        if name == "aten::exponential_" or not steps:
            steps.append(Counter())
        steps[-1]["ops"] += 1
        steps[-1]["syncs"] += name == "aten::_local_scalar_dense"
    steady = steps[2:-1]
    if not steady:
        raise ValueError("steady_step_op_counts needs a sampling run of at least 4 steps.")
    return statistics.median(s["ops"] for s in steady), statistics.median(s["syncs"] for s in steady)


__all__ = [
    "ANSWER_CHECK_EVERY",
    "LENGTH_BUCKET",
    "StaticKVCache",
    "bucketed_length",
    "decode_answers",
    "decode_images",
    "default_decode",
    "steady_step_op_counts",
    "with_eager_fallback",
]
