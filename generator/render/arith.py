"""Small-vector arithmetic whose every bit is the same on every machine.

``@``, ``dot`` and ``np.linalg`` go to the BLAS, whose kernels differ by CPU
(FMA or not, summation order): the last bit of a 3-vector's norm or a 3x3
product then depends on the machine, and so did 6-20% of samples' labels or
pixels. NumPy's float32 ``exp`` and ``**`` likewise use SIMD code chosen by
CPU. Elementwise ``+``, ``-``, ``*``, ``/`` and ``sqrt`` are correctly rounded
IEEE operations everywhere; the helpers here are built from them alone, in a
fixed order. Transcendentals that reach pixels go through float64 and are
rounded to float32 (``exp32``), which hides any last-bit difference of float64.
"""

from __future__ import annotations

import numpy as np


def matvec(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``m @ x`` for stacks of small matrices (..., r, k) and vectors (..., k): (..., r)."""
    out = m[..., 0] * x[..., None, 0]
    for k in range(1, m.shape[-1]):
        out = out + m[..., k] * x[..., None, k]
    return out


def dot3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of 3-vectors along the last axis."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def norm3(v: np.ndarray) -> np.ndarray:
    """Euclidean lengths of 3-vectors along the last axis."""
    return np.sqrt(dot3(v, v))


def exp32(x: np.ndarray) -> np.ndarray:
    """``exp`` of float32 values, to float32 through float64.

    Between NumPy's SIMD levels, float32 ``exp`` differed in 39% of a million
    values and float64 ``exp`` in 4.6% (by an ulp of float64); rounded to
    float32, the float64 results differed in none.
    """
    return np.exp(x.astype(np.float64)).astype(np.float32)


def int_power(x: np.ndarray, n: int) -> np.ndarray:
    """``x ** n`` for a whole ``n >= 1`` by repeated squaring: multiplications only."""
    result = None
    square = x
    while True:
        if n & 1:
            result = square if result is None else result * square
        n >>= 1
        if not n:
            return result
        square = square * square
