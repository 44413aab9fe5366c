"""The one text codec of PairParams: every parameter round-trips; a bad one is refused by name and range."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import HEDGE_METHODS, PairParams
from pairs import TIMEFRAMES, Timeframe


@settings(max_examples=300, deadline=None)
@given(window=st.integers(3, 5000), z_window=st.one_of(st.none(), st.integers(3, 5000)), method=st.sampled_from(HEDGE_METHODS),
       log_prices=st.booleans(), fitted=st.booleans(), delta=st.floats(1e-12, 0.4), ve=st.floats(1e-12, 1e5),
       entry=st.floats(0.2, 9.0), exit_share=st.floats(-0.9, 0.9), stop_extra=st.one_of(st.none(), st.floats(0.1, 20.0)),
       formation=st.integers(100, 50_000), exit_on=st.sampled_from(("held", "signal")), beta_min=st.floats(-50, 50),
       stale=st.floats(1.0, 86_400.0))
def test_every_parameter_set_round_trips_through_text(window, z_window, method, log_prices, fitted, delta, ve, entry, exit_share,
                                                      stop_extra, formation, exit_on, beta_min, stale):
    p = PairParams(window=window, z_window=z_window, method=method, log_prices=log_prices,
                   kalman_delta=None if fitted else delta, kalman_obs_var=None if fitted else ve, entry=entry,
                   exit=exit_share * entry, stop=None if stop_extra is None else entry + stop_extra, formation_bars=formation,
                   exit_on=exit_on, beta_min=beta_min, stale_after_s=stale)
    q = p.to_query()
    assert all(isinstance(v, str) for v in q.values())
    assert PairParams.from_query(q) == p


@pytest.mark.parametrize("query,says", [
    ({"window": "2"}, "window: must be between 3 and 5000"),
    ({"window": "ten"}, "window: expected an integer"),
    ({"formation_bars": "50001"}, "formation_bars: must be between 100 and 50000"),
    ({"entry": "nan"}, "entry: expected a finite number"),
    ({"method": "Magic"}, "method must be one of"),
    ({"log_prices": "maybe"}, "log_prices: expected 1 or 0"),
    ({"kalman_delta": "1e-6"}, "give both kalman_delta and kalman_obs_var"),
    ({"exit": "3", "entry": "2"}, "exit must lie strictly between"),
])
def test_a_bad_parameter_is_refused_by_name(query, says):
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        PairParams.from_query(query)


def test_empty_means_default_and_unknown_keys_are_ignored():
    assert PairParams.from_query({"z_window": "0", "stop": "", "symbol": "BTCUSDT"}) == PairParams()
    assert PairParams.from_query({"beta_max": "inf"}).beta_max == math.inf


def test_timeframes_are_one_typed_value():
    assert [tf.value for tf in TIMEFRAMES] == ["tick", "1s", "1m", "5m"]
    assert Timeframe.parse(" 1M ") is Timeframe.M1 and Timeframe.M1 == "1m" and f"{Timeframe.M5}" == "5m"
    assert Timeframe.TICK.bars is Timeframe.S1 and Timeframe.M5.bar_seconds == 300.0 and Timeframe.M1.closed_only
    assert Timeframe.at_least(60_000) is Timeframe.M1 and Timeframe.at_least(3_600_000) is None
    with pytest.raises(ValueError, match="timeframe must be one of 1s, 1m, 5m"):
        Timeframe.parse("tick", (Timeframe.S1, Timeframe.M1, Timeframe.M5))
