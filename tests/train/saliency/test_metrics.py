"""Each metric against a case worked out by hand (numbers in the comments)."""

import math

import numpy as np
import pytest

from train.saliency.metrics import auc, cc, information_gain, kl_div, nss, sim


def test_information_gain_two_fixations():
    # model p = [.5, .25; .25, 0+], baseline uniform .25: log2(.5/.25)=1 bit, log2(.25/.25)=0
    p = np.array([[0.5, 0.25], [0.25, 1e-12]])
    base = np.full((2, 2), 0.25)
    fix = np.array([[0, 0], [1, 0]])
    assert information_gain(np.log(p), np.log(base), fix) == pytest.approx(0.5)
    assert information_gain(np.log(base), np.log(base), fix) == 0.0


def test_nss_uses_n_minus_1_std():
    # mean 1, sample std sqrt((1+1+1+9)/3) = 2, fixation on the 4: (4-1)/2 = 1.5
    s = np.array([[0.0, 0.0], [0.0, 4.0]])
    assert nss(s, np.array([[1, 1]])) == pytest.approx(1.5)
    assert nss(s, np.array([[0, 0]])) == pytest.approx(-0.5)


@pytest.mark.parametrize(
    "fix, expected",
    [
        # every pixel is a negative, the fixated one included, ties counting 1/2
        ([[1, 1]], 0.875),  # .4: above 3 of the 4 pixels, tied with 1: 3.5 / 4
        ([[0, 0]], 0.125),  # .1: above none, tied with 1: .5 / 4
        ([[1, 1], [1, 0]], 0.625),  # .4 and .2: (3.5 + 1.5) / 8
        ([[1, 1], [1, 1]], 0.875),  # a duplicate counts again, at the same rank
    ],
)
def test_auc(fix, expected):
    s = np.array([[0.1, 0.2], [0.3, 0.4]])
    assert auc(s, np.array(fix)) == pytest.approx(expected)


def test_cc():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[0.0, 1.0], [0.0, 0.0]])
    # centred: .75 and -.25s; cov = -.25, var = .75 each -> -1/3
    assert cc(a, b) == pytest.approx(-1 / 3)
    assert cc(a, 2 * a + 1) == pytest.approx(1.0)


def test_kl():
    # P = [.5, .5], Q = [1, 0]: 1 * log(1 / .5) = log 2
    assert kl_div(np.array([1.0, 1.0]), np.array([3.0, 0.0])) == pytest.approx(math.log(2))
    assert kl_div(np.array([1.0, 3.0]), np.array([2.0, 6.0])) == pytest.approx(0.0, abs=1e-12)


def test_sim():
    # [1,2,3] -> min-max [0,.5,1] -> /1.5 [0,1/3,2/3]; [0,0,1]: min sum = 2/3
    assert sim(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0])) == pytest.approx(2 / 3)
    assert sim(np.array([0.0, 2.0]), np.array([0.0, 5.0])) == pytest.approx(1.0)
