"""The configuration: validated, serialisable, and checked for compatibility."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neardup import Config, ConfigError


@given(num_perm=st.integers(8, 512), shingle=st.integers(1, 10), threshold=st.floats(0, 1),
       containment=st.floats(0, 1))
def test_json_round_trip(num_perm, shingle, threshold, containment):
    """A configuration read back from its JSON is equal to itself."""
    config = Config(num_perm=num_perm, shingle_size=shingle, threshold=threshold, min_containment=containment)
    assert Config.from_json(config.to_json()) == config


@pytest.mark.parametrize("changes", [{"num_perm": 0}, {"threshold": 1.5}, {"min_containment": -0.1},
                                     {"shingle_size": "5"}, {"article_bands": (200, 1)}, {"lsh_weights": (1, 1)},
                                     {"boilerplate_ratio": 0.5}])
def test_bad_values_are_config_errors(changes):
    """Out-of-range values raise ConfigError, which is also a ValueError."""
    with pytest.raises(ConfigError):
        Config(**changes)
    with pytest.raises(ValueError):
        Config(**changes)


def test_unknown_fields_and_bad_json_are_refused():
    """A stored configuration with unknown fields or broken JSON is an error, not ignored."""
    with pytest.raises(ConfigError):
        Config.from_json('{"num_perm": 128, "colour": "blue"}')
    with pytest.raises(ConfigError):
        Config.from_json("{not json")


def test_fingerprint_parameters_must_match_but_thresholds_may_differ():
    """Different num_perm/seed/shingle size are incompatible; different thresholds are fine."""
    Config().check_compatible(Config(threshold=0.5, min_containment=0.2))
    for other in (Config(num_perm=64), Config(seed=2), Config(shingle_size=3)):
        with pytest.raises(ConfigError):
            Config().check_compatible(other)


def test_with_options_ignores_none():
    """with_options changes only the options given."""
    assert Config().with_options(threshold=None, shingle_size=4) == Config(shingle_size=4)
