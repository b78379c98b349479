"""The machine-independent helpers compute what numpy's own functions compute."""

import numpy as np
import pytest

from generator.render.arith import exp32, int_power, matvec, norm3


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 24, 33])
def test_int_power_is_the_power(n):
    x = np.arange(-3.0, 4.0)  # whole numbers: every product is exact, so must equal x ** n
    assert int_power(x, n).tobytes() == (x**n).tobytes()
    assert int_power(np.float32(1.5), n) == pytest.approx(1.5**n, rel=1e-6)


def test_matvec_broadcasts_like_matmul():
    rng = np.random.default_rng(0)
    m = rng.integers(-9, 10, (4, 1, 3, 3)).astype(np.float64)  # whole numbers: exact sums
    x = rng.integers(-9, 10, (2, 1, 5, 3)).astype(np.float64)
    want = (x[..., None, :] @ np.swapaxes(m, -1, -2))[..., 0, :]
    assert matvec(m, x).shape == (2, 4, 5, 3)
    np.testing.assert_array_equal(matvec(m, x), want)
    np.testing.assert_array_equal(matvec(m[0, 0], x[0, 0, 0]), m[0, 0] @ x[0, 0, 0])


def test_norm_and_exp_agree_with_numpy():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((1000, 3))
    np.testing.assert_allclose(norm3(v), np.linalg.norm(v, axis=-1), rtol=1e-15)
    x = rng.uniform(-80, 5, 10_000).astype(np.float32)
    got = exp32(x)
    assert got.dtype == np.float32
    # the float32 nearest the true value: within half a float32 ulp of a float64 exp
    np.testing.assert_allclose(got, np.exp(x.astype(np.float64)), rtol=2.0**-24, atol=0)
