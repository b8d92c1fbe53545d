"""Recorder.departure_soc counts exactly as np.histogram over SOC_BINS (its edges, closed last bin, NaN dropped)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from v2gsim.recorder import SOC_BINS, Recorder


def _counts(soc: np.ndarray) -> np.ndarray:
    rec = Recorder(1, 1, np.empty(0, np.int64))
    rec.departure_soc(soc)
    return rec.departure_soc_counts


def test_hand_counted_edges():
    # 0 and 0.05 open bins 0 and 1; 1.0 falls in the last bin (closed on the right);
    # just below 0.05 stays in bin 0; below 0, above 1 and NaN are not counted
    soc = np.array([0.0, np.nextafter(0.05, 0.0), 0.05, 0.5, 1.0, -0.01, 1.01, np.nan])
    want = np.zeros(20, np.int64)
    want[0], want[1], want[10], want[19] = 2, 1, 1, 1
    np.testing.assert_array_equal(_counts(soc), want)


def test_accumulates_over_calls():
    rec = Recorder(1, 1, np.empty(0, np.int64))
    rec.departure_soc(np.array([0.1, 0.2]))
    rec.departure_soc(np.array([0.1]))
    assert rec.departure_soc_counts[2] == 2 and rec.departure_soc_counts.sum() == 3


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.integers(0, 200),
              elements=st.one_of(st.floats(-0.5, 1.5), st.sampled_from(list(SOC_BINS)), st.just(np.nan), st.just(np.inf))))
def test_same_as_numpy_histogram(soc):
    np.testing.assert_array_equal(_counts(soc), np.histogram(soc, bins=SOC_BINS)[0])
