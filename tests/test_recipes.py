"""Configs and recipes (`recipes`), and the CLI options generated from them."""

import dataclasses

import click
import pytest

from digitrec.cli import cli
from digitrec.errors import ConfigError
from digitrec.recipes import (DEFAULT_RECIPE, OPTIMIZERS, RECIPES, SCHEDULES, SUMMARIES, ReaderConfig, TrainConfig,
                              config_from_flags, matching_recipe, recipe)

NOT_FLAGS = {"arch_args"}  # a dict, set by recipes (`recipe` is set by --recipe, whose help lists them)


def _options(command: str) -> dict[str, click.Option]:
    return {p.name: p for p in cli.commands[command].params}


def _help(command: str) -> str:
    ctx = click.Context(cli.commands[command], info_name=command, terminal_width=100)
    return cli.commands[command].get_help(ctx)


def test_recipes_are_valid():
    for name, cfg in RECIPES.items():
        cfg.validate()
        assert cfg.recipe == name
    t = RECIPES["tutorial"]
    assert (t.arch, t.optimizer, t.lr, t.batch_size, t.epochs, t.schedule, t.augment) == ("mlp", "adam", 1e-3, 64, 5, "none", 0.0)


def test_unknown_recipes_and_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe("turbo")
    with pytest.raises(ConfigError, match="unknown training settings: colour"):
        recipe("fast", colour="red")
    with pytest.raises(ConfigError, match="optimizer 'lbfgs'"):
        recipe("fast", optimizer="lbfgs").validate()


def test_flags_resolve_like_the_issue_says():
    # The tutorial's run, spelled out in flags, is exactly the tutorial recipe.
    spelled = config_from_flags(None, arch="mlp", optimizer="adam", lr=0.001, batch_size=64, epochs=5)
    assert dataclasses.replace(spelled, recipe="tutorial", out="x") == dataclasses.replace(RECIPES["tutorial"], out="x")
    # No recipe and no arch: the default recipe, with flags on top; unset flags (None) change nothing.
    cfg = config_from_flags(None, epochs=2, lr=None)
    assert cfg.recipe == DEFAULT_RECIPE and cfg.epochs == 2 and cfg.lr == RECIPES[DEFAULT_RECIPE].lr
    assert cfg.out == f"runs/{DEFAULT_RECIPE}"
    assert config_from_flags("robust", seed=7).arch_args == RECIPES["robust"].arch_args


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["fast"].epochs = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReaderConfig().steps = 1


def test_every_recipe_is_in_train_help_with_its_summary():
    assert set(SUMMARIES) == set(RECIPES)
    text = " ".join(_options("train")["recipe"].help.split())
    for name, summary in SUMMARIES.items():
        assert f"{name}: {summary}" in text
    shown = " ".join(_help("train").split())  # as printed, wrapped
    assert all(f"{name}:" in shown for name in RECIPES)


def test_every_train_config_field_has_an_option_with_its_help():
    options = _options("train")
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_FLAGS:
            assert f.name not in options
            continue
        assert f.name in options, f"TrainConfig.{f.name} has no `digitrec train` option"
        assert options[f.name].default is None or f.name == "device"  # unset: the recipe's value stands
        if "help" in f.metadata:
            assert options[f.name].help == f.metadata["help"]
    assert tuple(options["optimizer"].type.choices) == OPTIMIZERS
    assert tuple(options["schedule"].type.choices) == SCHEDULES
    assert options["compile"].secondary_opts == ["--no-compile"] and options["amp"].secondary_opts == ["--no-amp"]


def test_existing_train_flags_keep_their_names_and_types():
    options = _options("train")
    expected = {"epochs": ("--epochs", click.IntRange), "batch_size": ("--batch-size", click.IntRange),
                "lr": ("--lr", click.FloatRange), "val_size": ("--val-size", click.IntRange),
                "label_smoothing": ("--label-smoothing", click.FloatRange), "seed": ("--seed", type(click.INT)),
                "styles": ("--styles", click.FloatRange), "members": ("--members", click.IntRange)}
    for name, (flag, kind) in expected.items():
        assert options[name].opts == [flag] and isinstance(options[name].type, kind)
    assert (options["val_size"].type.min, options["val_size"].type.max) == (0, 59999)
    assert options["lr"].type.min == 0 and options["lr"].type.min_open
    assert {"recipe", "resume", "force", "quiet", "data_dir", "device", "out"} <= set(options)


def test_train_reader_options_come_from_reader_config():
    options = _options("train-reader")
    for f in dataclasses.fields(ReaderConfig):
        assert options[f.name].help == f.metadata["help"] and options[f.name].default is None
    assert (options["max_digits"].type.min, options["max_digits"].type.max) == (1, 12)
    assert options["out"].default == "runs/reader"
    channels = options["channels"].type
    assert channels.convert("32,64,128", options["channels"], None) == (32, 64, 128)
    for bad in ("32,64", "a,b,c", "0,8,16"):
        with pytest.raises(click.BadParameter, match="3 positive whole numbers"):
            channels.convert(bad, options["channels"], None)


def test_matching_recipe_names_the_recipe_that_trains_a_config_again():
    # As a checkpoint keeps it: plain JSON values, and the name the run was started under.
    saved = dataclasses.asdict(recipe("best", extremes=1.0, out="runs/best-x", device="cuda", seed=3))
    assert saved["recipe"] == "best" and matching_recipe(saved) == "robust"
    assert matching_recipe(dataclasses.asdict(config_from_flags(None, out="x"))) == DEFAULT_RECIPE
    assert matching_recipe(dataclasses.asdict(recipe("best", epochs=29))) is None  # no recipe has these settings
    assert matching_recipe(dataclasses.asdict(recipe("robust", threads=1))) == "robust"  # how it ran, not what it learnt
    assert matching_recipe(dataclasses.asdict(ReaderConfig())) is None and matching_recipe(None) is None
