"""params.yaml is validated once, with errors that name the key and what is allowed."""

from pathlib import Path

import pytest
import yaml

from synthmix.params import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_are_valid():
    params = load_params(ROOT / "params.yaml")
    assert 0 <= params.ratio <= 1
    assert [it.id for it in params.iterations.values()] == [1, 2, 3]
    assert params.validation.on_invalid in {"keep", "drop", "fail"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"ratio": 1.5}, "ratio: Input should be less than or equal to 1 (got 1.5)"),
        ({"ratio": "lots"}, "ratio: Input should be a valid number"),
        ({"tasks": ["math", "chess"]}, "unknown task(s) ['chess']"),
        ({"train": {"epochs": "three"}}, "train.epochs"),
        ({"train": {"epoch": 3}}, "train.epoch: Extra inputs are not permitted"),
        ({"generate": {"mode": "poems"}}, "generate.mode: Input should be 'answers' or 'instances'"),
        ({"iterations": {"iter1": {"id": 1, "prev": 0}, "iter2": {"id": 3, "prev": 1}}}, "iterations.iter2"),
        ({"generate": {"mode": "instances"}}, "train.loss_on: sequence"),
        ({"mix": {"mode": "accumulate"}, "ratio": 1.0}, "ratio must be < 1"),
        ({"max_new_tokens": {"chess": 64}}, "max_new_tokens: unknown task(s) ['chess']"),
        ({"max_new_tokens": {"math": 0}}, "max_new_tokens.math: Input should be greater than 0 (got 0)"),
        ({"max_new_tokens": {"code": "long"}}, "max_new_tokens.code: Input should be a valid integer"),
        ({"max_new_tokens": [320]}, "max_new_tokens: Input should be a valid dictionary"),
    ],
)
def test_bad_values_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert expected in str(err.value)


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ParamsError) as err:
        parse_params({"ratio": -0.1, "seed": -1})
    assert "ratio" in str(err.value) and "seed" in str(err.value)


def test_per_task_size_override():
    params = parse_params({"prepare": {"train_size": 100, "sizes": {"code": {"train_size": 7}}}})
    assert params.size("code", "train") == 7
    assert params.size("math", "train") == 100
    assert params.size("code", "test") == params.prepare.test_size


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_shipped_params_round_trip_through_yaml(tmp_path):
    # dvc exp run -S rewrites params.yaml; what it writes must still parse
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["ratio"] = 0.3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert load_params(tmp_path / "params.yaml").ratio == 0.3


def test_profile_overrides_every_section_it_names_and_nothing_else():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    builtin = parse_params(raw)
    raw["profile"] = "paper"
    paper = parse_params(raw)
    assert paper.model == raw["profiles"]["paper"]["model"] != builtin.model
    assert paper.train.mixed_precision == raw["profiles"]["paper"]["train"]["mixed_precision"]
    # keys the profile leaves alone keep the base file's values, nested ones included
    assert paper.train.epochs == builtin.train.epochs
    assert paper.generate.temperature == builtin.generate.temperature  # the profile sets only dtype/batch_size
    assert paper.validation == builtin.validation and paper.gate == builtin.gate


def test_a_typo_in_an_inactive_profile_is_caught():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["paper"]["train"]["lr"] = 0.1
    with pytest.raises(ParamsError, match=r"profiles\.paper.*\n.*train\.lr"):
        parse_params(raw)


def test_an_undefined_profile_names_the_defined_ones():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profile"] = "papr"
    with pytest.raises(ParamsError, match="'papr' is not defined; profiles: builtin, paper"):
        parse_params(raw)


def test_generation_budgets_default_to_the_family_and_the_paper_profile_raises_them():
    from synthmix.tasks import get_task

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    builtin = parse_params(raw)
    assert builtin.max_new_tokens == {}
    for name in builtin.tasks:
        assert builtin.generation_budget(get_task(name)) == get_task(name).max_new_tokens
    raw["profile"] = "paper"
    paper = parse_params(raw)
    budgets = {name: paper.generation_budget(get_task(name)) for name in paper.tasks}
    # every task set, none below its family's default; GSM8K solutions and HumanEval bodies run long
    assert set(paper.max_new_tokens) == set(paper.tasks)
    assert all(budgets[name] >= get_task(name).max_new_tokens for name in budgets)
    assert budgets["math"] >= 256 and budgets["code"] >= 256
    # HumanEval's longest canonical body (864 characters) fits at under 3 characters a token
    assert budgets["code"] * 2.5 > 864


def test_phase_0_tracks_every_train_key_it_reads_and_none_it_does_not():
    """baseline_train lists train's keys one by one, leaving out those only iterations 1+ read (a
    sweep of `train.init` or `train.later_learning_rate` reuses phase 0) and `checkpoint_every`
    (where a killed run resumes from). A new TrainParams field must be listed or left out here on
    purpose, or phase 0 would not rerun when it changes."""
    from synthmix.params import TrainParams

    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["baseline_train"]
    listed = {p.removeprefix("train.") for p in stage["params"] if p.startswith("train.")}
    assert "train" not in stage["params"]
    iteration_only = {"init", "later_learning_rate", "checkpoint_every"}
    assert listed == set(TrainParams.model_fields) - iteration_only
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    assert listed <= set(shipped), "dvc fails on a listed key params.yaml lacks"
