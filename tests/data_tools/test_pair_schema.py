"""Pair and input schema: valid lines parse, invalid ones fail with file:line: field messages."""

import json

import pytest
from PIL import Image

from data_tools.jsonl import load_understanding, read_pairs
from data_tools.multiple_choice import format_mcq, option_letters
from data_tools.schema import SchemaError, parse_pair
from data_tools.validate import main as validate_main

QUESTION = format_mcq("What colour?", ["red", "blue", "green", "yellow"])


def _pair(**overrides):
    pair = {
        "similarity": 0.72,
        "generate_ann": {"image_path": "g.png", "prompt": "a red circle", "tag": "geneval_train"},
        "understand_ann": {"image_path": "u.png", "question": QUESTION, "answer": "A", "tag": "counting"},
    }
    pair.update(overrides)
    return pair


def test_validation_reads_options_like_the_accuracy_reward():
    """ "(A) x" lines are multiple choice for the reward, so validation must check the answer letter against them."""
    question = "How many?\n(A) one\n(B) two\n(C) three"
    assert option_letters(question) == ["A", "B", "C"]
    assert option_letters("What is 2 + 3?") == []
    with pytest.raises(SchemaError, match="not one of the options"):
        parse_pair(_pair(understand_ann={**_pair()["understand_ann"], "question": question, "answer": "E"}), "p:1")


def test_parse_pair_infers_pair_type_and_aligned_similarity():
    assert parse_pair(_pair(), "f:1").pair_type == "retrieved"
    same = {"image_path": "x.png", "prompt": "p", "question": QUESTION, "answer": "B"}
    aligned = parse_pair({"generate_ann": same, "understand_ann": same}, "f:1")
    assert aligned.pair_type == "aligned" and aligned.similarity == 1.0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"similarity": 1.5}, "similarity"),
        ({"similarity": None}, "similarity"),
        ({"similarity": "high"}, "similarity"),
        ({"pair_type": "paired"}, "pair_type"),
        ({"generate_ann": {"image_path": "g.png", "prompt": ""}}, "generate_ann.prompt"),
        ({"generate_ann": "nope"}, "generate_ann"),
        ({"understand_ann": {"image_path": "u.png", "question": QUESTION, "answer": "E"}}, "understand_ann.answer"),
        ({"understand_ann": {"image_path": "u.png", "question": QUESTION}}, "understand_ann.answer"),
        ({"understand_ann": {"question": QUESTION, "answer": "A"}}, "understand_ann.image_path"),
    ],
)
def test_parse_pair_errors_name_location_and_field(overrides, field):
    with pytest.raises(SchemaError) as err:
        parse_pair(_pair(**overrides), "pairs.jsonl:7")
    assert err.value.field_name == field
    assert str(err.value).startswith(f"pairs.jsonl:7: {field}: ") and "fix:" in str(err.value)


def test_read_pairs_reports_line_of_bad_json(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_pair()) + "\n\n{oops\n")
    with pytest.raises(SchemaError, match=r"p\.jsonl:3: <line>: invalid JSON"):
        read_pairs(path)


def test_understanding_loader_collects_errors_or_skips(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    lines = [
        {"image_path": "a.png", "question": "Colour?", "options": ["red", "blue"], "answer": "B"},
        {"image_path": "missing.png", "question": "Q", "answer": "A"},
        {"image_path": "a.png", "question": "Colour?", "options": ["red", "blue"], "answer": "red"},
        {"image_path": "a.png", "answer": "A"},
    ]
    path = tmp_path / "und.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(ValueError) as err:
        load_understanding(path)
    message = str(err.value)
    assert "3 invalid line(s)" in message
    assert (
        f"{path}:2: image_path: image" in message
        and f"{path}:3: answer:" in message
        and f"{path}:4: question:" in message
    )
    samples, report = load_understanding(path, skip_invalid=True)
    assert len(samples) == 1 and report.kept == 1 and len(report.errors) == 3
    assert samples[0].question == format_mcq("Colour?", ["red", "blue"]) and samples[0].image_path == str(
        tmp_path / "a.png"
    )


def test_validate_cli_reports_line_numbers(tmp_path, capsys):
    for name in ("g.png", "u.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / name)
    path = tmp_path / "pairs.jsonl"
    good, bad = _pair(), _pair(similarity=-0.2)
    missing = _pair(generate_ann={"image_path": "nowhere.png", "prompt": "p"})
    path.write_text("\n".join(json.dumps(x) for x in (good, bad, missing)) + "\n")
    assert validate_main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2: similarity:" in out and f"{path}:3: generate_ann.image_path:" in out
    assert "1 valid pair(s)" in out
    path.write_text(json.dumps(good) + "\n")
    assert validate_main([str(path)]) == 0
