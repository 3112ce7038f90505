"""Inputs that once gave a wrong answer, an unhelpful error or a hang: each case
below failed before its fix."""
import multiprocessing
import os
import sys

import numpy as np
import pytest

import csoftmax as cs
from csoftmax import reference as ref

FORWARD = [cs.softmax, cs.log_softmax]


@pytest.mark.parametrize("fn", FORWARD)
@pytest.mark.parametrize("with_out", [False, True])
def test_size_one_axis_of_stride_zero(fn, with_out):
    # None-indexing gives length-1 axes of stride 0; the kernel once got no view
    x = np.arange(5.0)[:, None, None]
    want = getattr(ref, fn.__name__)(x, axis=1)
    out = np.full(x.shape, 7.0) if with_out else None
    got = fn(x, axis=1, out=out)
    np.testing.assert_array_equal(got, want.astype(np.float64))
    if with_out:
        assert got is out


@pytest.mark.parametrize("fn", [cs.softmax_backward, cs.log_softmax_backward])
def test_backward_size_one_axis_of_stride_zero(fn):
    s = np.ones((2, 1, 1))
    g = np.zeros(2)[:, None, None]
    got = fn(s, g, axis=1)
    np.testing.assert_allclose(got, getattr(ref, fn.__name__)(s, g, axis=1).astype(np.float64))


@pytest.mark.parametrize("call", [
    lambda: cs.softmax_backward([0.5, 0.5], None),
    lambda: cs.log_softmax_backward([0.5, 0.5], None),
    lambda: cs.cross_entropy_grad([[0.0, 1.0]], [1], grad_output=None),
])
def test_grad_output_none_is_refused(call):
    with pytest.raises(TypeError, match="grad_output"):
        call()


def test_plus_inf_logits_follow_log_softmax_and_softmax():
    # the loss is -log_softmax's (+inf here), the gradient softmax's (nan)
    z = np.array([[np.inf, 0.0, 1.0], [0.0, 1.0, 2.0]])
    loss = cs.cross_entropy(z, [1, 2], reduction="none")
    want = ref.cross_entropy(z, [1, 2], reduction="none")
    assert loss[0] == np.inf == want[0]
    np.testing.assert_allclose(loss[1], float(want[1]))
    _, grad = cs.cross_entropy_grad(z, [1, 2], reduction="none")
    _, want_grad = ref.cross_entropy_grad(z, [1, 2], reduction="none")
    assert np.isnan(grad[0]).all() and np.isnan(want_grad[0].astype(float)).all()
    assert np.isfinite(grad[1]).all()
    # the label's own logit +inf: inf - inf
    assert np.isnan(cs.cross_entropy([[np.inf, 0.0]], [0], reduction="none")[0])
    np.testing.assert_equal(cs.cross_entropy([[np.inf, 0.0]], [[0.0, 1.0]], reduction="none"),
                            np.array([np.inf]))


def test_negative_or_nan_probability_targets_are_refused():
    for bad in (-1.0, np.nan):
        with pytest.raises(ValueError, match="probabilities must be >= 0"):
            cs.cross_entropy([[0.0, 1.0]], [[bad, 2.0]])


@pytest.mark.parametrize("l2", [np.nan, -1.0, np.inf])
def test_regression_penalty_must_be_finite_and_non_negative(l2):
    with pytest.raises(ValueError, match="l2"):
        cs.softmax_regression_loss_grad(np.zeros((2, 1)), [[1.0]], [0], l2=l2)


@pytest.mark.parametrize("n, error", [(2.7, TypeError), ("2", TypeError), (True, TypeError),
                                      (2 ** 31, ValueError), (0, ValueError)])
def test_set_num_threads_refuses(n, error):
    before = cs.get_num_threads()
    with pytest.raises(error, match="number of threads"):
        cs.set_num_threads(n)
    assert cs.get_num_threads() == before


def test_jacobian_too_large_says_so():
    x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (2 ** 32,), (0,))
    with pytest.raises(ValueError, match="more than an array can hold"):
        cs.softmax_jacobian(x)


@pytest.mark.parametrize("axis", [1.0, "1", [0.5]])
def test_axis_of_the_wrong_type(axis):
    with pytest.raises(TypeError, match="axis must be"):
        cs.softmax(np.zeros((2, 3)), axis=axis)


def test_huge_unsigned_label_is_named_exactly():
    with pytest.raises(ValueError, match="class label 9223372036854775808 is out of range"):
        cs.cross_entropy(np.zeros((1, 3)), np.array([2 ** 63], np.uint64))


def _raise_threads(queue):
    try:
        cs.set_num_threads(2)
        queue.put("accepted")
    except RuntimeError as exc:
        queue.put(f"refused: {exc}")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_forked_child_refuses_more_threads_instead_of_hanging():
    cs.softmax(np.zeros((64, 1024)), axis=-1)  # a threaded call in the parent
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_raise_threads, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the child hung or died"
    answer = queue.get(timeout=5)
    assert answer.startswith("refused") and "spawn" in answer


def test_reference_is_exact_on_integer_input():
    # integers give float64 results; the oracle must be more precise than that
    x = np.random.default_rng(0).integers(-30, 30, (16672, 2))
    want = ref.softmax(x.astype(np.longdouble), axis=0)
    got = ref.softmax(x, axis=0)
    assert got.dtype == np.longdouble
    np.testing.assert_allclose(got.astype(float), want.astype(float), rtol=1e-15)


def test_unaligned_labels(rng=np.random.default_rng(5)):
    # labels at an odd byte offset: read as intp only after an aligned copy
    z = rng.standard_normal((6, 4))
    labels = np.array([0, 3, 1, 2, 2, 1])
    buf = np.zeros(labels.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(buf[1:].data, np.int64)
    unaligned[...] = labels
    assert not unaligned.flags.aligned
    want = cs.cross_entropy_grad(z, labels)
    got = cs.cross_entropy_grad(z, unaligned)
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("C", [5, 36, 100, 700])
def test_rows_of_minus_inf(isa, C):
    # a max over nothing but -inf must stay -inf (OpenMP's max reduction starts
    # its lanes at the lowest finite value under some compilers)
    x = np.full((5, C), -np.inf, np.float32)
    assert np.isnan(cs.softmax(x, axis=1)).all() and np.isnan(cs.log_softmax(x, axis=1)).all()
    assert (cs.logsumexp(x, axis=1) == -np.inf).all()
    mask = np.ones_like(x, bool)
    assert np.isnan(cs.softmax(x, axis=1, where=mask)).all()
    assert np.isnan(cs.cross_entropy(x, np.zeros(5, int), weight=np.ones(C), reduction="none")).all()


@pytest.mark.parametrize("axis", [-1, 2, 7])
def test_compiled_entries_refuse_an_axis_out_of_range(axis):
    # the public functions pass a normalized axis; the compiled entries once
    # read the shape at a negative or too-large index and wrote past the output
    from csoftmax import _backward, _forward
    s = np.full((3, 10), 0.1, np.float32)
    out = np.zeros_like(s)
    with pytest.raises(ValueError, match="not an axis"):
        _backward.backward(s, s, axis, out, False, 1)
    with pytest.raises(ValueError, match="not an axis"):
        _forward.softmax(s, (axis,), out, False, 1)
    assert not out.any()
