"""aggTrade frame parsing: real frames, unknown keys, and every kind of malformed input."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.binance_parse import ControlReply, MalformedFrame, parse_frame
from tests.recordings import aggtrade_frames


def test_real_frames_parse_exactly(data_dir):
    frames = aggtrade_frames(data_dir, "ETHUSDT")[:500]
    for fr in frames:
        out = parse_frame(json.dumps(fr), 1.0)
        d = fr["data"]
        assert out == ("ETHUSDT", d["a"], d["T"], d["E"], 1.0, float(d["p"]), float(d["q"]), d["f"], d["l"], d["m"])
        assert repr(out[5]) == repr(float(d["p"])) and f"{out[5]:.2f}" == d["p"]


def test_unknown_keys_ignored_and_bare_payload_accepted(data_dir):
    d = dict(aggtrade_frames(data_dir, "BTCUSDT")[0]["data"], X="MARKET", zz={"new": 1})
    assert parse_frame(json.dumps(d), 0.0)[1] == d["a"]
    assert isinstance(parse_frame('{"result": null, "id": 3}', 0.0), ControlReply)


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda d: d.pop("a"), "missing"),
        (lambda d: d.update(p="abc"), "not a number"),
        (lambda d: d.update(p="-1.5"), "non-positive"),
        (lambda d: d.update(p="0"), "non-positive"),
        (lambda d: d.update(q="-0.1"), "negative quantity"),
        (lambda d: d.update(a="12"), "integer"),
        (lambda d: d.update(m="true"), "boolean"),
        (lambda d: d.update(e="trade"), "event type"),
        (lambda d: d.update(f=10, l=5), "inconsistent"),
        (lambda d: d.update(p=61000.5), "decimal string"),
        (lambda d: d.update(p="nan"), "finite"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(data_dir, mutate, reason):
    fr = aggtrade_frames(data_dir, "BTCUSDT")[0]
    mutate(fr["data"])
    with pytest.raises(MalformedFrame, match=reason):
        parse_frame(json.dumps(fr), 0.0)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c, max_size=4), max_leaves=12).map(json.dumps)))
def test_fuzzed_frames_never_raise_anything_but_malformed(raw):
    with contextlib.suppress(MalformedFrame):
        parse_frame(raw, 0.0)
