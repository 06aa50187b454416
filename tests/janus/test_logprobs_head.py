"""janus.logprobs head calls: once over all positions (the ZeRO-3 default: one weight gather) or once per chunk,
with the same log-probs and gradients either way."""

import pytest
import torch

from janus import logprobs
from janus.logprobs import gathered_logps

N, L, D, V = 2, 12, 8, 50


def _head_and_inputs():
    torch.manual_seed(0)
    head = torch.nn.Linear(D, V, bias=False)
    calls = []
    head.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[1]))
    cond = torch.randn(N, L, D, requires_grad=True)
    uncond = torch.randn(N, L, D, requires_grad=True)
    targets = torch.randint(0, V, (N, L))
    return head, calls, cond, uncond, targets


@pytest.mark.parametrize("cfg_weight", [None, 3.0])
def test_single_head_call_gives_the_same_logps_and_gradients_as_per_chunk(monkeypatch, cfg_weight):
    copies = 2 if cfg_weight else 1
    monkeypatch.setattr(logprobs, "LOGIT_CHUNK_ELEMENTS", copies * N * V * 3)  # chunks of 3 positions (4 chunks)
    results = {}
    for single in (False, True):
        head, calls, cond, uncond, targets = _head_and_inputs()
        out = gathered_logps(
            head,
            cond,
            targets,
            vocab_size=V,
            uncond_hidden=uncond if cfg_weight else None,
            cfg_weight=cfg_weight,
            temperature=0.7,
            single_head_call=single,
        )
        out.sum().backward()
        results[single] = (out.detach(), cond.grad, head.weight.grad, calls)
    (ref, ref_cond, ref_weight, chunk_calls), (got, got_cond, got_weight, single_calls) = results[False], results[True]
    torch.testing.assert_close(got, ref)
    torch.testing.assert_close(got_cond, ref_cond)
    torch.testing.assert_close(got_weight, ref_weight)
    assert len(chunk_calls) == 2 * 4 * copies  # forward + checkpoint recompute, per chunk and per cond/uncond
    assert single_calls == [L] * copies  # one call over all positions (per cond/uncond)


def test_zero3_partitioned_head_defaults_to_one_call(monkeypatch):
    monkeypatch.setattr(logprobs, "LOGIT_CHUNK_ELEMENTS", N * V * 3)
    head, calls, cond, _, targets = _head_and_inputs()
    with torch.no_grad():
        gathered_logps(head, cond, targets, vocab_size=V)
    assert len(calls) == 4  # a plain head: per chunk
    calls.clear()
    head.weight.ds_id = 0  # how DeepSpeed ZeRO-3 tags its partitioned parameters
    with torch.no_grad():
        gathered_logps(head, cond, targets, vocab_size=V)
    assert calls == [L]
