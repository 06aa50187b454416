"""Shared check that a saved folder works with plain transformers' Janus workflow and still with janus."""

from pathlib import Path

import torch
from PIL import Image
from transformers import AutoProcessor, JanusForConditionalGeneration

import janus


def assert_transformers_folder_works(folder: Path, model, processor) -> None:
    """AutoProcessor -> JanusProcessor; transformers' own model answers about an image (greedy, same tokens as
    our model) and generates image tokens (greedy, same as janus' CFG sampler with top_k=1); janus still loads it."""
    hf_processor = AutoProcessor.from_pretrained(folder)
    assert type(hf_processor).__name__ == "JanusProcessor"
    hf_model = JanusForConditionalGeneration.from_pretrained(folder).eval()
    image = Image.new("RGB", (40, 30), "red")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the sky?"}]}]
    prompt = hf_processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = hf_processor(text=prompt, images=[image], return_tensors="pt")
    ours = processor.encode_understanding(["What color is the sky?"], [image])
    assert torch.equal(inputs.input_ids, ours.input_ids)  # same template, system prompt and image expansion
    torch.testing.assert_close(inputs.pixel_values, ours.pixel_values, atol=1e-6, rtol=0)
    answer = hf_model.generate(**inputs, max_new_tokens=4, do_sample=False)[:, ours.input_ids.shape[1] :]
    ids, mask = ours.input_ids, ours.attention_mask
    with torch.no_grad():
        for _ in range(4):  # greedy with our loaded model, no cache
            next_id = (
                model(input_ids=ids, attention_mask=mask, pixel_values=ours.pixel_values).logits[:, -1].argmax(-1)
            )
            ids, mask = torch.cat([ids, next_id[:, None]], 1), torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    assert answer.shape == (1, 4) and torch.equal(answer, ids[:, -4:])
    image_inputs = hf_processor(
        text=hf_processor.apply_chat_template(
            [{"role": "user", "content": "a red apple"}], add_generation_prompt=True
        ),
        generation_mode="image",
        return_tensors="pt",
    )
    batch = processor.encode_generation(["a red apple"])
    assert torch.equal(image_inputs.input_ids, batch.input_ids)
    tokens = hf_model.generate(**image_inputs, generation_mode="image", do_sample=False)
    expected = janus.sample_image_tokens(model, batch, cfg_weight=5.0, top_k=1).tokens
    assert tokens.shape == (1, processor.num_image_tokens) and torch.equal(tokens, expected)
    reloaded, _ = janus.load_pretrained(folder)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reloaded.state_dict().items())
