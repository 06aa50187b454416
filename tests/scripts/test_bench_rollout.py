"""scripts/bench_rollout.py's Lumina-DiMOO section at a tiny size: its same-seed claim (batched = batch-1 loop)."""

from scripts.bench_rollout import bench_lumina, parse_args


def test_lumina_batched_rollouts_give_the_batch_one_loops_tokens(tmp_path):
    tiny = ["--lumina_image_size", "64", "--lumina_image_steps", "3", "--lumina_answer_tokens", "4"]
    args = parse_args(["--configs", "lumina", "--rows", "3", "--repeats", "1", "--device", "cpu", *tiny])
    results, comparisons = bench_lumina(args, tmp_path)
    assert [c.batched.method for c in comparisons] == ["lumina image batched", "lumina text batched"]
    assert [c.loop.method for c in comparisons] == ["lumina image batch-1 loop", "lumina text batch-1 loop"]
    assert [r.tokens for r in results] == [16, 16, 4, 4]  # 4 x 4 codes per image, 4 answer tokens per row
    for comparison in comparisons:
        assert comparison.equal_tokens == 1.0  # rows of different prompt lengths, one generator each
        assert comparison.batched.rows == 3 and comparison.batched.tokens_per_cpu_s > 0


def test_one_side_only_reports_one_method(tmp_path):
    side = ["--lumina_tasks", "text", "--lumina_method", "loop", "--lumina_answer_tokens", "4"]
    args = parse_args(["--configs", "lumina", "--rows", "2", "--repeats", "1", "--device", "cpu", *side])
    results, comparisons = bench_lumina(args, tmp_path)
    assert comparisons == [] and [r.method for r in results] == ["lumina text batch-1 loop"]
