"""Worker of test_dapo_ranks.py under torchrun (2 processes, gloo, CPU, the ZeRO-3 config): one dapo loss pass.

torchrun --nproc_per_node 2 tests/open_r1/dapo_worker.py <tiny_janus_path> <pairs.jsonl> <out_dir>

Rank 0's answers all end at their 2nd token, rank 1's never end, so the ranks count different answer tokens. Each
rank writes `<out_dir>/rank<r>.json`: the gradient of its loss on each counted log-prob, the token counts measured
here (all-reduced by this worker, not by the trainer), and how far the rank-averaged parameter gradient is from the
gradient of the dapo objective written out here. One trainer per process: accelerate allows one DeepSpeed state.
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from pairgrpo_helpers import learnable_rewards, tiny_args

import janus.sampling as janus_sampling
from open_r1.runtime import full_weights_on_every_rank, prepare_launch

K = 4  # tiny_args: num_generations
TASKS = ("understand", "generate")
# One generation batch of 4 micro-batches serves 2 optimizer steps of 2 micro-batches each.
STEPS_PER_GENERATION, ACCUMULATION = 4, 2
REAL_PICK = janus_sampling.pick_tokens
ZERO3 = Path(__file__).resolve().parents[2] / "configs" / "zero3.json"


def force_answer_lengths(model, eos: int, rank: int) -> None:
    """Rank 0: every answer is EOS at its 2nd token; rank 1: no answer ends (max_completion_length tokens).

    For one answer rollout: the step counter starts anew at each call of this function.
    """
    text_vocab, step = model.lm_head.out_features, {"answer": 0}

    def pick(logits, **kwargs):
        tokens, logps = REAL_PICK(logits, **kwargs)
        if logits.shape[-1] == text_vocab:  # the answer loop (the image loop draws from the image codebook)
            tokens = tokens.masked_fill(tokens == eos, eos + 1)
            if rank == 0 and step["answer"] == 1:
                tokens = torch.full_like(tokens, eos)
            step["answer"] += 1
        return tokens, logps

    janus_sampling.pick_tokens = pick


def build_trainer(janus_path: str, pairs: str, out: Path, spg: int, ga: int):
    """The trainer as open_r1/grpo.py builds it under DeepSpeed ZeRO-3 (the model is not wrapped: no train())."""
    from janus.backbone import JanusBackbone
    from open_r1.dataset import load_pair_dataset
    from open_r1.trainer import PairGRPOTrainer

    args = tiny_args(out, steps_per_generation=spg, gradient_accumulation_steps=ga, deepspeed=str(ZERO3),
                     accelerator_config={"use_configured_state": True})  # fmt: skip
    with full_weights_on_every_rank(args):
        backbone, model = JanusBackbone.load(janus_path, dtype=torch.float32)
    dataset = load_pair_dataset(pairs)
    trainer = PairGRPOTrainer(model=model, backbone=backbone, reward_funcs=learnable_rewards(), args=args,
                              train_dataset=dataset)  # fmt: skip
    return trainer, model


def capture_logps(trainer) -> dict:
    """Keep each task's [N, L] log-probs of the loss pass, with their gradient once backward ran."""
    captured, real = {}, trainer._logps

    def logps(model, task, rollout):
        values = real(model, task, rollout)
        values.retain_grad()
        captured[task] = values
        return values

    trainer._logps = logps
    return captured


def loss_pass(janus_path: str, pairs: str, out: Path) -> dict:
    """Rollouts, then the loss and backward of the first micro-batch; what the test checks."""
    spg, ga = STEPS_PER_GENERATION, ACCUMULATION
    rank = dist.get_rank()
    trainer, model = build_trainer(janus_path, pairs, out / "run", spg, ga)
    force_answer_lengths(model, trainer.backbone.processor.special.eos_id, rank)
    model.train()
    torch.manual_seed(rank)
    pairs_per_rank = trainer.args.pairs_per_device * spg  # one generation batch
    rows = [dict(trainer.train_dataset[rank * pairs_per_rank + i]) for i in range(pairs_per_rank)]
    inputs = trainer._generate_and_score_completions([row for row in rows for _ in range(K)])  # RepeatSampler order
    n = pairs_per_rank * K
    for task in TASKS:  # known, non-cancelling, non-zero advantages, different on each rank and task
        scale = (0.5 + rank) * (1.0 if task == "understand" else 0.3)
        inputs[f"{task}/advantages"] = (torch.linspace(-1.0, 2.0, n) + 0.01) * scale
    # The first micro-batch of the generation batch (TRL's split, without its shuffle); the first optimizer step is
    # made of the first `ga` micro-batches.
    micro_rows = trainer.args.per_device_train_batch_size  # rows: pairs x K
    micro = {k: v[:micro_rows] if isinstance(v, torch.Tensor) and v.ndim else v for k, v in inputs.items()}
    rank_step_tokens = {task: inputs[f"{task}/completion_mask"][: micro_rows * ga].sum().float() for task in TASKS}
    step_tokens = {}
    for task in TASKS:  # the dapo count: this optimizer step's counted tokens on BOTH ranks
        step_tokens[task] = rank_step_tokens[task].clone()
        dist.all_reduce(step_tokens[task])
    captured = capture_logps(trainer)
    trainer.current_gradient_accumulation_steps = ga  # set by Trainer.train(); the loss is called directly here
    loss = trainer._compute_loss(model, micro)
    params = [p for p in model.parameters() if p.requires_grad]
    loss.backward(retain_graph=True)  # before the objective's grad, which would add to the log-probs' .grad
    got = torch.cat([flat_grad(p.grad, p) for p in params])
    token_grads = {task: captured[task].grad.clone() for task in TASKS}  # [N, L] d loss / d logp
    weights = {"understand": trainer.args.understanding_loss_weight, "generate": trainer.args.generation_loss_weight}
    # The dapo objective of the step: sum over both ranks' counted tokens of -A * ratio, / the step's tokens.
    objective = sum(weights[task] * -surrogate_sum(captured[task], micro, task) / step_tokens[task] for task in TASKS)
    wanted = torch.autograd.grad(objective, params, allow_unused=True)
    wanted = torch.cat([flat_grad(g, p) for g, p in zip(wanted, params, strict=True)])
    dist.all_reduce(got)  # DeepSpeed averages the ranks' gradients ...
    got /= dist.get_world_size()
    dist.all_reduce(wanted)  # ... and the objective's gradient is the sum of its per-rank terms
    result = {"loss": loss.item(), "grad_rel_err": ((got - wanted).norm() / wanted.norm()).item()}
    for task in TASKS:
        mask = micro[f"{task}/completion_mask"].bool()
        advantages = micro[f"{task}/advantages"].unsqueeze(1).expand_as(mask)
        result[task] = {
            "step_tokens": step_tokens[task].item(),
            "rank_step_tokens": rank_step_tokens[task].item(),
            "micro_tokens": int(mask.sum()),
            "weight": weights[task],
            # d loss / d logp of each counted token, divided by -A: the token's weight in this rank's loss
            "token_weights": (token_grads[task][mask] / -advantages[mask]).tolist(),
            "uncounted_grad_max": token_grads[task][~mask].abs().max().item() if (~mask).any() else 0.0,
        }
    return result


def surrogate_sum(logps: torch.Tensor, inputs: dict, task: str) -> torch.Tensor:
    """sum over counted tokens of A * ratio (no clipping: ratio ~ 1 here), ratio against the stored old log-probs."""
    old = inputs.get(f"{task}/old_logps")
    ratio = torch.exp(logps - (logps.detach() if old is None else old))  # [N, L]
    mask = inputs[f"{task}/completion_mask"]
    return (inputs[f"{task}/advantages"].unsqueeze(1) * ratio * mask).sum()


def flat_grad(grad: torch.Tensor | None, param: torch.Tensor) -> torch.Tensor:
    return torch.zeros(param.numel()) if grad is None else grad.reshape(-1)


def main(janus_path: str, pairs: str, out: str) -> None:
    prepare_launch(["--deepspeed", str(ZERO3)])  # the gloo state a CPU-only DeepSpeed launch of grpo.py creates
    out = Path(out)
    rank = dist.get_rank()
    (out / f"rank{rank}.json").write_text(json.dumps(loss_pass(janus_path, pairs, out)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
