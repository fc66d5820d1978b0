"""``eacps.tomlw``: the one TOML writer (generate's saved configs, benchmark configs, test configs)."""

from __future__ import annotations

import math
import random
import tomllib

import configs
import pytest

from eacps.tomlw import dumps, key, value


def random_value(rng: random.Random, depth: int) -> object:
    kinds = ["int", "float", "str", "bool"] + (["list", "dict", "tables"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return rng.randint(-10**12, 10**12)
    if kind == "float":
        return rng.choice([0.0, -1.5, 1e-300, 3.25e17, rng.random()])
    if kind == "str":
        return "".join(rng.choice('ab "\\\n\t\x00\x1f\x7fé\u2028😀.=[]#') for _ in range(rng.randint(0, 8)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "tables":
        return [random_table(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    return random_table(rng, depth + 1)


def random_table(rng: random.Random, depth: int) -> dict:
    names = ["name", "a.b", "with space", "é", "", "1", "params", "criteria"]
    return {rng.choice(names) + str(i): random_value(rng, depth) for i in range(rng.randint(0, 4))}


@pytest.mark.parametrize("seed", range(40))
def test_any_json_like_config_round_trips(seed):
    cfg = random_table(random.Random(seed), 0)
    assert tomllib.loads(dumps(cfg, header="a\nheader")) == cfg


def test_a_config_is_laid_out_like_a_hand_written_one():
    cfg = configs.edit(configs.digits("fk-steering", 20, params={"particles": 4}), "potential.calibration_samples", 5)
    text = dumps(cfg, header="made by a test")
    assert text.splitlines()[:4] == ["# made by a test", "", "[generator]", 'name = "digits"']
    for line in ("[potential]", "calibration_samples = 5", "[potential.criteria.identity]", "[search]",
                 "params = { particles = 4 }", "[[conditions]]", "extra = { reference_index = 59 }"):
        assert line in text.splitlines(), line
    assert tomllib.loads(text) == cfg


def test_top_level_scalars_come_before_any_table():
    cfg = {"generator": {"name": "toy"}, "colour": "red", "tasks": {"name": "toy", "n": 3}}
    text = dumps(cfg)
    assert text.startswith('colour = "red"\n') and tomllib.loads(text) == cfg


def test_values_and_keys():
    assert [value(x) for x in (True, 3, 0.5, "q\"\\", [1, "x"], {}, {"a b": 1})] == [
        "true", "3", "0.5", '"q\\"\\\\"', '[1, "x"]', "{}", '{ "a b" = 1 }']
    assert value(math.inf) == "inf" and value(-math.inf) == "-inf" and value(math.nan) == "nan"
    assert key("k_global") == "k_global" and key("a.b") == '"a.b"'
    with pytest.raises(TypeError, match="cannot write set as TOML"):
        value({1, 2})
