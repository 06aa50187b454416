"""UniRL rewards (rewards/reward_unirl.py): correctness table, judge modes, registry wiring, LLM judge cache."""

import pytest

from data_tools import loopback_openai
from data_tools.loopback_openai import FakeOpenAI
from data_tools.multiple_choice import format_mcq
from rewards import build_reward_funcs, combine_rewards
from rewards.answer_judge import LLMAnswerJudge
from rewards.reward_unirl import (
    answer_correctness,
    answer_is_correct,
    select_judge_answers,
    self_check_reward,
    unirl_answer_reward,
    unirl_image_reward,
)

MCQ = format_mcq("How many cookies are in this image?", ["two", "three", "five", "four"])
FREE = "How many items in this image?"


@pytest.mark.parametrize(
    ("answer", "gold", "question", "correct"),
    [
        ("A", "A", MCQ, True),
        ("The answer is B.", "A", MCQ, False),
        ("<answer>D</answer>", "D", MCQ, True),
        ("four", "D", MCQ, True),  # option text names option D
        ("A and D", "D", MCQ, False),  # ambiguous
        ("two clocks", "two clocks", FREE, True),
        ("2 clocks", "two clocks", FREE, True),  # number words normalised
        ("The clocks.", "two clocks", FREE, False),
        ("three clocks", "two clocks", FREE, False),
    ],
)
def test_answer_is_correct_table(answer, gold, question, correct):
    assert answer_is_correct(answer, gold, question) is correct


def test_llm_judge_only_asked_for_free_form_mismatches():
    calls = []

    def judge(question, gold, answer):
        calls.append((question, gold, answer))
        return True

    assert answer_is_correct("There are a couple of clocks", "two clocks", FREE, judge)
    assert not answer_is_correct("B", "A", MCQ, judge)  # letters never reach the judge
    assert answer_is_correct("two clocks", "two clocks", FREE, judge)  # matched before asking
    assert calls == [(FREE, "two clocks", "There are a couple of clocks")]


def test_judge_modes_pick_their_answers():
    sampled, greedy, frozen = ["A", "B"], ["B", "B"], ["C", "A"]
    assert select_judge_answers("sampled", sampled, greedy, frozen) == sampled
    assert select_judge_answers("greedy", sampled, greedy, frozen) == greedy
    assert select_judge_answers("frozen", sampled, greedy, frozen) == frozen
    with pytest.raises(ValueError, match="needs the frozen answers"):
        select_judge_answers("frozen", sampled, greedy)
    with pytest.raises(ValueError, match="not one of"):
        select_judge_answers("best", sampled, greedy)
    # The generation reward follows the judge: same sampled answers, different image rewards per mode.
    golds, questions = ["B", "A"], [MCQ, MCQ]
    rewards = {
        mode: unirl_image_reward(["p", "p"], [None, None], golds, questions,
                                 select_judge_answers(mode, sampled, greedy, frozen))
        for mode in ("sampled", "greedy", "frozen")
    }  # fmt: skip
    assert rewards == {"sampled": [0.0, 0.0], "greedy": [1.0, 0.0], "frozen": [0.0, 1.0]}


def test_image_rewards_split_self_rows_from_pair_rows():
    # Rows: a self row, a PairUG row with a generation question, a PairUG row without one (gold None).
    kwargs = dict(answer=["A", "B", None], question=[MCQ, MCQ, ""], judge_answers=["A", "B", "A"])
    own = [True, False, False]
    assert unirl_image_reward(["p"] * 3, [None] * 3, own_image=own, **kwargs) == [1.0, None, None]
    assert self_check_reward(["p"] * 3, [None] * 3, own_image=own, **kwargs) == [None, 1.0, None]
    wrong = {**kwargs, "judge_answers": ["C", "C", "C"]}
    assert self_check_reward(["p"] * 3, [None] * 3, own_image=own, **wrong) == [None, 0.0, None]
    funcs = build_reward_funcs(["unirl_image", "self_check"])
    assert [f.task for f in funcs] == ["generate", "generate"]
    total = combine_rewards({f.name: f(["p"] * 3, [None] * 3, own_image=own, **wrong) for f in funcs}, funcs)
    assert total[:2].tolist() == [0.0, 0.0] and total[2].isnan()  # each row scored by exactly one of them


def test_understanding_reward_and_none_rows():
    assert unirl_answer_reward([MCQ, MCQ, MCQ], ["A", "C", "x"], answer=["A", "A", None]) == [1.0, 0.0, None]
    assert answer_correctness(["two"], ["two"], [FREE]) == [1.0]
    with pytest.raises(ValueError, match="lengths"):
        answer_correctness(["a"], ["a", "b"], [FREE])


def test_registry_wiring_with_weights_and_judge():
    seen = []
    funcs = build_reward_funcs(
        ["unirl_answer", "unirl_image"], [1.0, 0.5], answer_judge=lambda q, g, a: seen.append(a) or a == "2 things"
    )
    assert [(f.name, f.task, f.weight) for f in funcs] == [("unirl_answer", "understand", 1.0), ("unirl_image", "generate", 0.5)]  # fmt: skip
    answer_fn, image_fn = funcs
    und = answer_fn([FREE, FREE], ["2 things", "none"], answer=["two clocks", "two clocks"])
    gen = image_fn(["a photo of two clocks"] * 2, [None, None], answer=["D", "D"], question=[MCQ, MCQ],
                   judge_answers=["D", "A"])  # fmt: skip
    assert und == [1.0, 0.0] and gen == [1.0, 0.0]
    assert seen == ["2 things", "none"]
    total = combine_rewards({"unirl_image": gen}, [image_fn])
    assert total.tolist() == [0.5, 0.0]


def test_llm_judge_is_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setitem(loopback_openai.CANNED, "AnswerMatch", {"same": True, "reason": "both say two"})
    with FakeOpenAI(failures=["429"]) as server:
        judge = LLMAnswerJudge("judge-model", str(tmp_path), base_url=server.base_url, api_key="x")
        judge.retry.base_delay = 0.0
        assert judge(FREE, "two clocks", "a pair of clocks")
        assert LLMAnswerJudge("judge-model", str(tmp_path), base_url=server.base_url, api_key="x")(
            FREE, "two clocks", "a pair of clocks"
        )
        assert server.requests == 2  # one 429 + one answer; the second judge read the cache
    assert judge.api_calls == 1 and len(list(tmp_path.rglob("*.json"))) == 1
