from __future__ import annotations

import pytest

from thunderbolt.sdk.errors import InvalidConfig
from thunderbolt.trainer.params import resolve


def test_string_parameter_values_are_coerced(make_config):
    hp = resolve(
        make_config(
            parameters={
                "spectral_norm": "true",
                "hidden_dim": "48",
                "num_layers": 3.0,
                "learning_rate": "1e-3",
                "activation": "GELU",
            }
        )
    )
    assert hp.spectral_norm is True
    assert hp.hidden_dim == 48 and hp.num_layers == 3
    assert hp.learning_rate == pytest.approx(1e-3)
    assert hp.activation == "gelu"


@pytest.mark.parametrize("value", ["false", "False", "0", False, 0])
def test_false_like_values_turn_spectral_norm_off(make_config, value):
    assert resolve(make_config(parameters={"spectral_norm": value})).spectral_norm is False


def test_parameters_override_config_defaults(make_config):
    config = make_config(batchSize=16, epochs=4, parameters={"batch_size": 8})
    hp = resolve(config)
    assert hp.batch_size == 8 and hp.epochs == 4


def test_unknown_activation_is_an_invalid_config(make_config):
    with pytest.raises(InvalidConfig, match="activation"):
        resolve(make_config(parameters={"activation": "swish"}))


def test_non_integer_width_is_rejected(make_config):
    with pytest.raises(InvalidConfig, match="hidden_dim"):
        resolve(make_config(parameters={"hidden_dim": "12.5"}))


def test_uncoercible_boolean_is_rejected(make_config):
    with pytest.raises(InvalidConfig, match="spectral_norm"):
        resolve(make_config(parameters={"spectral_norm": "maybe"}))
