"""Property: the decoder is total. Whatever the bytes, each record of a batch ends as
exactly one valid event or one bad record with a reason, through both paths, and no
exception escapes. ~100 examples per test by default, 2000 with CI set (tests/conftest.py)."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from driftline.config import parse_settings
from driftline.streams.decode import Decoder
from driftline.types import Batch, CategoricalColumn, SourcePosition
from tests.helpers import config, events

FEATURES = {"x": "numeric", "y": "numeric", "colour": "categorical", "flag": "boolean"}
DECODER = Decoder(parse_settings(config(model={"features": FEATURES}), {}).models)
VALID = events(40)

# text with lone surrogates (category Cs) as well as everything else
texts = st.text(st.characters(codec=None, categories=None), max_size=12) | st.sampled_from(
    ["\ud800", "\udc00", "a\udfffb", "\ud83d\ude00", "m", "v1", "2026-11-24T12:00:00.123Z", "NaTZ"])
numbers = (st.integers() | st.integers(min_value=-10**1000, max_value=10**1000)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([10**20, 2**64, -2**63 - 1]))
scalars = st.none() | st.booleans() | numbers | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(texts, inner, max_size=3), max_leaves=8)


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=True)  # NaN, Infinity, \udXXX escapes, ints of any size


@st.composite
def deep(draw) -> str:
    depth = draw(st.sampled_from([2, 100, 257, 1023, 1025, 5000, 30_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    closed = draw(st.booleans())
    return opener * depth + ("1" if opener != "[" else "") + (closer * depth if closed else "")


def field_value(valid):
    return st.one_of(st.just(_dumps(valid)), values.map(_dumps), deep(),
                     st.sampled_from(["NaN", "Infinity", "-Infinity", "9" * 1000, "100000000000000000000",
                                      '"\\ud800"', '"\\\\ud800"', "null"]))


@st.composite
def hostile_json(draw) -> str:
    feats = [(k, draw(field_value(v))) for k, v in (("x", 1.5), ("y", 2), ("colour", "red"), ("flag", True))
             if draw(st.booleans())]
    feats += draw(st.lists(st.tuples(texts, field_value(1)), max_size=2))  # undeclared, duplicates
    features = "{" + ",".join(f"{_dumps(k)}:{v}" for k, v in feats) + "}"
    top = [("model", draw(field_value("m"))), ("version", draw(field_value("v1"))),
           ("id", draw(field_value("7"))), ("ts", draw(field_value(1795000000000))),
           ("features", draw(st.just(features) | field_value({}))), ("prediction", draw(field_value(0.5)))]
    top = [kv for kv in top if draw(st.integers(0, 4))]  # each field present mostly
    top += draw(st.lists(st.sampled_from(top or [("model", '"m"')]), max_size=2))  # duplicate keys
    return "{" + ",".join(f'"{k}":{v}' for k, v in draw(st.permutations(top))) + "}"


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "cesu":  # surrogates written as bytes
        return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass")


hostile = st.one_of(
    st.none(),  # a tombstone
    st.binary(max_size=80),
    st.builds(_encode, hostile_json(), st.sampled_from(["utf-8", "utf-8", "utf-8", "cesu", "utf-16",
                                                        "utf-16-le", "utf-32", "utf-8-sig"])),
    values.map(lambda v: _dumps(v).encode("utf-8", "surrogatepass")),
)
record = st.one_of(st.sampled_from(VALID).map(lambda v: (v, True)), hostile.map(lambda v: (v, False)))


def _check(decoded, n: int, valid_at: set[int]) -> set[int]:
    positions = [b.position.offset for b in decoded.bad]
    assert len(set(positions)) == len(positions) and all(0 <= p < n for p in positions)
    assert all(isinstance(b.reason, str) and b.reason for b in decoded.bad)
    assert sum(c.n for c in decoded.groups.values()) + len(decoded.bad) == n
    assert not valid_at & set(positions), "a valid record was turned away"
    for cols in decoded.groups.values():
        assert cols.n > 0 and all(m.size == cols.n for m in cols.extra.values())
        for col in cols.features.values():
            assert col.values.size == cols.n
            if isinstance(col, CategoricalColumn):  # storable: no lone surrogate, UTF-8
                for v in col.values:
                    assert v is None or v.encode("utf-8")
    return set(positions)


@given(st.lists(record, min_size=1, max_size=12))
def test_any_batch_ends_as_events_or_bad_records_on_both_paths(recs):
    values = [v for v, _ in recs]
    valid_at = {i for i, (_, ok) in enumerate(recs) if ok}
    batch = Batch(values, lambda i: SourcePosition("t", 0, i))
    fast = _check(DECODER.decode(batch), len(values), valid_at)
    slow = _check(DECODER.decode_records(batch), len(values), valid_at)
    assert fast == slow, "the two paths judged the batch differently"


@given(st.lists(hostile, min_size=1, max_size=3), st.integers(0, 40))
def test_hostile_records_never_escape_the_columnar_path(bad, at):
    values = VALID[:at] + bad + VALID[at:]
    assert DECODER._arrow.decode(values) is None or all(orjson.loads(v) for v in bad)
    _check(DECODER.decode(Batch(values, lambda i: SourcePosition("t", 0, i))), len(values),
           set(range(at)) | set(range(at + len(bad), len(values))))
