"""Log-probs for the loss: agreement with the samplers, the two image-policy definitions, chunking, gradients."""

import copy

import pytest
import torch

import janus.logprobs as logprobs_module
from janus.logprobs import answer_token_logps, image_token_logps
from janus.sampling import sample_answer_tokens, sample_image_tokens

PROMPTS = ["a red apple", "two cats are sitting on a yellow sofa in the park at night"]
QUESTIONS = ["What color is the sky?", "How many birds are there in the picture? Answer with the letter."]


def _images(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1


@pytest.fixture(scope="module")
def image_rollout(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    generator = torch.Generator().manual_seed(0)
    samples = sample_image_tokens(
        model, batch, cfg_weight=5.0, temperature=0.8, generator=generator, return_logps=True
    )
    return batch, samples


@pytest.fixture(scope="module")
def answer_rollout(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_understanding(QUESTIONS, _images(2, processor.image_size))
    generator = torch.Generator().manual_seed(0)
    samples = sample_answer_tokens(
        model, batch, max_new_tokens=10, temperature=0.7, top_p=0.9, generator=generator, return_logps=True
    )
    return batch, samples


def test_cfg_mixed_image_logps_match_the_sampler(tiny_janus, image_rollout):
    model, _ = tiny_janus
    batch, samples = image_rollout
    with torch.no_grad():
        forward = image_token_logps(model, batch, samples.tokens, cfg_weight=5.0, temperature=0.8)
    assert forward.shape == samples.tokens.shape
    torch.testing.assert_close(forward, samples.logps, atol=1e-4, rtol=0)


def test_conditional_only_differs_from_cfg_mixed_and_equals_cfg_one(tiny_janus, image_rollout):
    model, _ = tiny_janus
    batch, samples = image_rollout
    with torch.no_grad():
        cond_only = image_token_logps(model, batch, samples.tokens, cfg_weight=None, temperature=0.8)
        cfg_one = image_token_logps(model, batch, samples.tokens, cfg_weight=1.0, temperature=0.8)
        mixed = image_token_logps(model, batch, samples.tokens, cfg_weight=5.0, temperature=0.8)
    assert torch.equal(cond_only, cfg_one)
    assert (cond_only - mixed).abs().max() > 1e-3


def test_sampler_with_cfg_one_reports_conditional_logps(tiny_janus):
    model, processor = tiny_janus
    batch = processor.encode_generation(PROMPTS)
    samples = sample_image_tokens(
        model, batch, cfg_weight=1.0, generator=torch.Generator().manual_seed(5), return_logps=True
    )
    with torch.no_grad():
        forward = image_token_logps(model, batch, samples.tokens, cfg_weight=None)
    torch.testing.assert_close(forward, samples.logps, atol=1e-4, rtol=0)


def test_answer_logps_match_the_sampler_on_unmasked_tokens(tiny_janus, answer_rollout):
    model, _ = tiny_janus
    batch, samples = answer_rollout
    with torch.no_grad():
        forward = answer_token_logps(model, batch, samples.completion_ids, samples.completion_mask, temperature=0.7)
    mask = samples.completion_mask.bool()
    torch.testing.assert_close(forward[mask], samples.logps[mask], atol=1e-4, rtol=0)


def test_small_chunks_give_the_same_values_and_gradients(tiny_janus, image_rollout, monkeypatch):
    model, _ = tiny_janus
    batch, samples = image_rollout
    model = copy.deepcopy(model)
    weight = model.model.generation_head.vision_head.weight

    def values_and_grad():
        weight.grad = None
        out = image_token_logps(model, batch, samples.tokens, cfg_weight=5.0, temperature=0.8)
        out.sum().backward()
        return out.detach(), weight.grad.clone()

    whole, whole_grad = values_and_grad()
    vocab = model.config.vq_config.num_embeddings
    # Room for 3 positions per chunk -> several chunks, each recomputed in backward.
    monkeypatch.setattr(logprobs_module, "LOGIT_CHUNK_ELEMENTS", 3 * 2 * len(PROMPTS) * vocab)
    chunked, chunked_grad = values_and_grad()
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)
    torch.testing.assert_close(chunked_grad, whole_grad, atol=1e-5, rtol=1e-4)


def _language_model_grad(model) -> torch.Tensor:
    return model.model.language_model.layers[0].self_attn.q_proj.weight.grad


def test_gradients_reach_the_language_model_through_image_logps(tiny_janus, image_rollout):
    model, _ = tiny_janus
    batch, samples = image_rollout
    model = copy.deepcopy(model).train()
    for cfg_weight in (None, 5.0):
        model.zero_grad(set_to_none=True)
        image_token_logps(model, batch, samples.tokens, cfg_weight=cfg_weight).mean().backward()
        assert _language_model_grad(model) is not None and _language_model_grad(model).abs().sum() > 0
        assert model.model.generation_aligner.fc1.weight.grad.abs().sum() > 0


def test_gradients_reach_the_language_model_and_vision_through_answer_logps(tiny_janus, answer_rollout):
    model, _ = tiny_janus
    batch, samples = answer_rollout
    model = copy.deepcopy(model).train()
    logps = answer_token_logps(model, batch, samples.completion_ids, samples.completion_mask)
    (logps * samples.completion_mask).sum().backward()
    assert _language_model_grad(model).abs().sum() > 0
    assert model.lm_head.weight.grad.abs().sum() > 0
    assert model.model.aligner.fc1.weight.grad.abs().sum() > 0


def test_temperature_must_be_positive(tiny_janus, image_rollout):
    model, _ = tiny_janus
    batch, samples = image_rollout
    with pytest.raises(ValueError, match="temperature"):
        image_token_logps(model, batch, samples.tokens, cfg_weight=None, temperature=0.0)
