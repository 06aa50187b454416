"""The LLM answer judge against a misbehaving server (issue 25): unusable replies drop the row's reward instead of
killing training, and a model the server does not serve is refused before training starts."""

from types import SimpleNamespace

import pytest

from data_tools import loopback_openai
from data_tools.loopback_openai import FakeOpenAI
from open_r1.grpo import answer_judge
from rewards.answer_judge import LLMAnswerJudge
from rewards.reward_unirl import answer_correctness

FREE = "How many items in this image?"


@pytest.mark.parametrize("failure", ["malformed", "nonjson", "refusal"])
def test_an_unusable_judge_reply_gives_no_verdict_and_is_counted(tmp_path, monkeypatch, failure):
    monkeypatch.setitem(loopback_openai.CANNED, "AnswerMatch", {"same": True, "reason": "both say two"})
    with FakeOpenAI(fail_when={"a pair of clocks": failure}) as server:
        judge = LLMAnswerJudge("o3", str(tmp_path), base_url=server.base_url, api_key="x")
        judge.retry.base_delay = 0.0
        rewards = answer_correctness(["a pair of clocks", "2 things"], ["two clocks"] * 2, [FREE] * 2, judge)
        assert rewards == [None, 1.0]  # the bad call's row gets no reward; the next row is still judged
        assert judge.unjudged == 1
    assert len(list(tmp_path.rglob("*.json"))) == 1  # no verdict is cached for the failed call: a rerun asks again


def _args(server, model):
    return SimpleNamespace(answer_judge_model=model, answer_judge_cache_dir="unused", answer_judge_base_url=server)


def test_a_model_the_server_does_not_serve_is_refused_at_start(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    with FakeOpenAI() as server:  # serves "o3" only
        args = _args(server.base_url, "o4-typo")
        args.answer_judge_cache_dir = str(tmp_path)
        with pytest.raises(ValueError, match=r"answer_judge_model='o4-typo' is not served by .*\['o3'\].*fix:"):
            answer_judge(args)
        args.answer_judge_model = "o3"
        assert answer_judge(args).model == "o3"
        assert server.requests == 0  # the check is GET /models: no chat call paid
