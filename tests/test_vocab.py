import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charrnn.errors import VocabularyError
from charrnn.data.vocab import Vocabulary, smallest_uint_dtype


def test_helo_one_hot_rows():
    vocab = Vocabulary(list("helo"))
    assert vocab.one_hot("helo").tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert vocab.encode("hell").tolist() == [0, 1, 2, 2]


def test_from_text_is_sorted_unique():
    vocab = Vocabulary.from_text("hello world")
    assert vocab.symbols == sorted(set("hello world"))
    assert vocab.dtype == np.uint8


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_any_unicode_round_trips(text):
    vocab = Vocabulary.from_text(text)
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert vocab.decode(ids) == text
    assert Vocabulary.from_json(vocab.to_json()) == vocab


def test_hard_cases_round_trip():
    text = "e\u0301 \U0001F600 漢字 한국어 \U00010348 \r\n\t\x00"
    vocab = Vocabulary.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_dtype_grows_with_vocabulary():
    assert smallest_uint_dtype(256) == np.uint8
    assert smallest_uint_dtype(257) == np.uint16
    assert smallest_uint_dtype(65536) == np.uint16
    assert smallest_uint_dtype(65537) == np.uint32
    codes = [code for code in range(70_000) if not 0xD800 <= code < 0xE000]
    vocab = Vocabulary.from_codepoints(codes)
    assert vocab.size > 65_535 and vocab.dtype == np.uint32
    text = "".join(chr(code) for code in codes[-50:])
    assert vocab.decode(vocab.encode(text)) == text


def test_unknown_characters_are_listed():
    vocab = Vocabulary.from_text("abc")
    with pytest.raises(VocabularyError, match="'x', 'z'"):
        vocab.encode("axbz")


def test_bad_symbols_rejected():
    with pytest.raises(ValueError, match="one character"):
        Vocabulary(["ab"])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(list("aa"))
    with pytest.raises(ValueError, match="at least one"):
        Vocabulary([])


def test_json_is_plain():
    assert json.loads(Vocabulary(list("ab")).to_json()) == {"symbols": "ab"}
