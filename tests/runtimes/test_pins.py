"""Which runtime each generation's config.json selects, and when the installed transformers already does."""

import json

import pytest

from minicpmv_app.runtimes import RUNTIMES, generation_name, runtime_for


@pytest.mark.parametrize("config, runtime", [
    ({"model_type": "minicpmv"}, "transformers-4.40"),  # 1.0 / 2.0 carry no version
    ({"model_type": "minicpmv", "version": 2.5}, "transformers-4.40"),
    ({"model_type": "minicpmv", "version": 2.6}, "transformers-4.40"),
    ({"model_type": "minicpmv", "version": "4.0"}, "transformers-4.44"),
    ({"model_type": "minicpmo", "version": 2.6}, "transformers-4.44"),
    ({"model_type": "minicpmv", "version": 4.5}, "transformers-4.51"),
    ({"model_type": "minicpmo", "version": 4.5}, "transformers-4.51"),
])
def test_each_generation_gets_its_model_cards_runtime(config, runtime):
    assert runtime_for(config).name == runtime


def test_unknown_generations_get_no_runtime():
    assert runtime_for({"model_type": "minicpmv4_6"}) is None
    assert runtime_for({"model_type": "minicpmv", "version": 9.9}) is None
    assert generation_name({"model_type": "minicpmv", "version": 9.9}) == "minicpmv 9.9"


def test_the_corpus_configs_select_the_4_40_runtime(legacy_corpus):
    for folder in ("minicpm-v-2_0", "minicpm-v-2_6"):
        config = json.loads((legacy_corpus / folder / "config.json").read_text())
        assert runtime_for(config).transformers == "4.40.0"


def test_an_installed_transformers_satisfies_a_pin_by_release_not_by_prefix():
    runtime = RUNTIMES["transformers-4.40"]
    assert runtime.accepted("4.40.0") and runtime.accepted("4.40.2") and runtime.accepted("4.36.0")
    assert not runtime.accepted("4.41.0") and not runtime.accepted("4.400.0") and not runtime.accepted("5.24.0")


def test_every_runtime_pins_exact_versions_transformers_first():
    for runtime in RUNTIMES.values():
        assert runtime.packages[0] == f"transformers=={runtime.transformers}"
        assert all("==" in p for p in runtime.packages)
        assert runtime.accepted(runtime.transformers)
