"""harness.stats.distributions against scipy, the oracle they replace in the light install (to 1e-10).

Catches a wrong continued fraction (a sign, a term, the side of the mean it is evaluated on), a t quantile that
stops early or on the wrong side, and Harrell-Davis or order-statistic weights off by one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from harness.stats import distributions

DEGREES_OF_FREEDOM = [1, 1.3, 2, 2.5, 4.7, 9, 30, 250.5, 1e4]


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_t_quantiles_match_scipy(df):
    for p in [0.025, 0.3, 0.51, 0.6, 0.8, 0.9, 0.95, 0.975, 0.995, 0.9995]:
        assert distributions.t_ppf(p, df) == pytest.approx(special.stdtrit(df, p), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_t_tails_match_scipy(df):
    for t in [-40, -3, -0.5, 0, 1e-3, 0.7, 2.1, 6, 60]:
        assert distributions.t_sf(t, df) == pytest.approx(special.stdtr(df, -t), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("n", [1, 2, 7, 72, 1000])
@pytest.mark.parametrize("q", [0.05, 0.5, 0.9, 0.95])
def test_beta_and_binomial_cdfs_match_scipy(n, q):
    edges = np.arange(n + 1) / n
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    np.testing.assert_allclose(distributions.beta_cdf(edges, a, b), stats.beta.cdf(edges, a, b), rtol=1e-10,
                               atol=1e-14)
    np.testing.assert_allclose(distributions.binom_cdf(n, q), stats.binom.cdf(np.arange(n + 1), n, q), rtol=1e-10,
                               atol=1e-14)


def test_a_t_quantile_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError):
        distributions.t_ppf(1.0, 3)


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_t_density_matches_scipy(df):
    # The density is Newton's slope in t_ppf: a wrong one still converges on most points, slowly or not at all.
    for t in [-40, -3, -0.5, 0, 0.7, 2.1, 6, 60]:
        assert distributions._t_pdf(t, df) == pytest.approx(stats.t.pdf(t, df), rel=1e-10)


def test_the_binomial_beyond_exact_coefficients_and_at_certain_probabilities_match_scipy():
    # Past EXACT_BINOMIAL_N the coefficients come from log-gamma; p of 0 or 1 is certain (no pmf to sum).
    n = distributions.EXACT_BINOMIAL_N + 500
    for q in [0.05, 0.5, 0.95]:
        np.testing.assert_allclose(distributions.binom_cdf(n, q), stats.binom.cdf(np.arange(n + 1), n, q),
                                   rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(distributions.binom_cdf(3, 0.0), [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(distributions.binom_cdf(3, 1.0), [0.0, 0.0, 0.0, 1.0])


def test_the_incomplete_beta_at_its_ends_and_near_one_matches_scipy():
    # x = 0 and x = 1 are exact; near 1 the caller's y = 1 - x keeps digits that 1 - x would lose.
    assert distributions.betainc(2.5, 3.0, 0.0) == 0.0 and distributions.betainc(2.5, 3.0, 1.0) == 1.0
    for a, b in [(0.5, 0.5), (2.5, 3.0), (40.0, 2.0)]:
        for y in [1e-12, 1e-6, 0.2]:
            assert distributions.betainc(a, b, 1 - y, y) == pytest.approx(1 - special.betainc(b, a, y), rel=1e-12)
        for x in [1e-9, 0.3, 0.7]:
            assert distributions.betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10)


@pytest.mark.parametrize("df", DEGREES_OF_FREEDOM)
def test_the_t_mass_near_zero_keeps_its_digits(df):
    # P(-t < T < t) for a tiny t is 1 - 2 P(T > t): the incomplete beta is asked near x = 1, where t_sf passes
    # y = t^2 / (df + t^2) exactly; 1 - x instead loses the digits this mass is made of (0.2% off at t = 1e-7).
    # For df = 1 (Cauchy) the mass is 2 atan(t) / pi exactly; scipy's stdtr is itself 0.04% off there at 1e-7.
    for t in [1e-7, 1e-5]:
        expected = 2 * math.atan(t) / math.pi if df == 1 else 1 - 2 * special.stdtr(df, -t)
        assert 1 - 2 * distributions.t_sf(t, df) == pytest.approx(expected, rel=1e-9)
