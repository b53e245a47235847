"""The planner statistics: kernels, the deconvolution fit, intervals, privacy noise, wards."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nangluc.service import privacy, statistics
from nangluc.service.wards import NONE, OTHER, load_wards, parse_ward_list, ward_key
from nangluc.simulations.measurement import MeasurementModel, competence_cuts

# ------------------------------------------------------------------ kernels


def _kernel(noise_sd: float = 6.0, n: int = 60_000, seed: int = 0) -> statistics.Kernel:
    """A kernel of a known measurement: observed = true + N(0, noise_sd), clipped to 0..100."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0, 100, n)
    observed = np.clip(true + rng.normal(0, noise_sd, n), 0, 100)
    return statistics.Kernel.tabulate(true, observed)


def test_kernel_rows_are_distributions_and_round_trip_through_json() -> None:
    kernel = _kernel()
    assert kernel.support.all()
    np.testing.assert_allclose(kernel.pooled.sum(axis=1), 1.0)
    # A true score of 51 is mostly observed in the 50-60 bin.
    assert kernel.pooled[statistics.latent_bin(51.0)].argmax() == 5
    again = statistics.Kernel.from_json(json.loads(json.dumps(kernel.to_json())))
    np.testing.assert_allclose(again.pooled, kernel.pooled, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        statistics.Kernel(np.ones((1, 3, 3)), [0.0], np.ones((3, 3)), np.ones(3, bool))


def test_kernels_are_read_at_a_groups_level() -> None:
    rng = np.random.default_rng(1)
    level = rng.uniform(-2, 2, 40_000)
    true = np.clip(50 + 15 * level + rng.normal(0, 8, level.size), 0, 100)
    # The measurement is worse for low groups: their kernels must differ.
    observed = np.clip(true + rng.normal(0, np.where(level < 0, 12, 3)), 0, 100)
    kernel = statistics.Kernel.tabulate(
        true, observed, level=level, level_centres=np.array([-1.5, 1.5]), overall=true
    )
    assert kernel.anchors[0] < 40 < 60 < kernel.anchors[1]
    low, high = kernel.at(np.array([kernel.anchors[0], kernel.anchors[1]]), 2)
    row = statistics.latent_bin(50.0)
    assert low[row].max() < high[row].max()  # the noisier population spreads more
    np.testing.assert_allclose(kernel.at(None, 3)[1], kernel.pooled)


# ---------------------------------------------------------------------- fit


def _counts(kernel: statistics.Kernel, weights: np.ndarray, n: int, rng) -> np.ndarray:
    expected = n * weights @ kernel.pooled
    return rng.poisson(expected).astype(float)


def test_fit_recovers_a_two_humped_population_and_its_levels() -> None:
    kernel = _kernel()
    rng = np.random.default_rng(3)
    x = statistics.LATENT_CENTRES
    density = np.exp(-0.5 * ((x - 30) / 10) ** 2) + 0.6 * np.exp(-0.5 * ((x - 70) / 10) ** 2)
    weights = density / density.sum()
    counts = np.stack([_counts(kernel, weights, 200_000, rng) for _ in range(3)])
    fit = statistics.fit_latent(counts, [kernel])
    assert fit.converged.all()
    for lower, upper in ((0, 20), (20, 40), (40, 60), (60, 80), (80, 101)):
        truth = (weights * statistics.band_weights(lower, upper)).sum()
        share = statistics.share_between(fit, lower, upper)
        np.testing.assert_allclose(share.value, truth, atol=0.01)
    mean = statistics.mean_score(fit)
    np.testing.assert_allclose(mean.value, (weights * x).sum(), atol=0.5)
    np.testing.assert_allclose(fit.tests, counts.sum(axis=1), rtol=1e-3)


def test_intervals_cover_at_their_rate_with_privacy_noise() -> None:
    kernel = _kernel(noise_sd=8.0)
    rng = np.random.default_rng(5)
    x = statistics.LATENT_CENTRES
    weights = np.exp(-0.5 * ((x - 42) / 13) ** 2)
    weights /= weights.sum()
    truth = (weights * statistics.band_weights(20, 40)).sum()
    scale = 4.0
    variance = float(statistics.discrete_laplace_variance(scale))
    groups = 300
    counts = np.stack([_counts(kernel, weights, 400, rng) for _ in range(groups)])
    p = 1 - np.exp(-1 / scale)
    counts += rng.geometric(p, counts.shape) - rng.geometric(p, counts.shape)
    fit = statistics.fit_latent(counts, [kernel], variance)
    share = statistics.share_between(fit, 20, 40)
    covered = (share.low <= truth) & (truth <= share.high)
    assert 0.9 <= covered.mean() <= 0.99, covered.mean()
    # The standard errors match the spread of the estimates across groups.
    assert 0.8 <= share.value.std() / share.se.mean() <= 1.25


def test_several_kernels_share_one_distribution() -> None:
    sharp, blurred = _kernel(noise_sd=3.0, seed=1), _kernel(noise_sd=12.0, seed=2)
    rng = np.random.default_rng(9)
    weights = np.exp(-0.5 * ((statistics.LATENT_CENTRES - 60) / 10) ** 2)
    weights /= weights.sum()
    counts = np.concatenate(
        [_counts(sharp, weights, 30_000, rng), _counts(blurred, weights, 10_000, rng)]
    )[None]
    fit = statistics.fit_latent(counts, [sharp, blurred])
    np.testing.assert_allclose(fit.tests, 40_000, rtol=0.02)
    np.testing.assert_allclose(statistics.mean_score(fit).value, 60.0, atol=0.5)


def test_noise_only_groups_are_withheld() -> None:
    rng = np.random.default_rng(11)
    scale = 4.0
    variance = statistics.discrete_laplace_variance(scale)
    p = 1 - np.exp(-1 / scale)
    noise_only = rng.geometric(p, (5000, 10)) - rng.geometric(p, (5000, 10))
    assert statistics.precise_enough(noise_only, variance).mean() < 0.002
    real = np.full((1, 10), 30.0)
    assert statistics.precise_enough(real, variance).all()


def test_difference_of_independent_estimates() -> None:
    a = statistics.Estimate(np.array([0.6]), np.array([0.03]), np.array([0.0]), np.array([1.0]))
    b = statistics.Estimate(np.array([0.4]), np.array([0.04]), np.array([0.0]), np.array([1.0]))
    d = statistics.difference(a, b)
    np.testing.assert_allclose(d.value, 0.2)
    np.testing.assert_allclose(d.se, 0.05)
    np.testing.assert_allclose(d.low, 0.2 - 1.959963984540054 * 0.05)


def test_fit_refuses_bad_input() -> None:
    kernel = _kernel(n=5000)
    with pytest.raises(ValueError, match="shape"):
        statistics.fit_latent(np.ones((2, 7)), [kernel])
    with pytest.raises(ValueError, match="finite"):
        statistics.fit_latent(np.full((1, 10), np.nan), [kernel])
    with pytest.raises(ValueError, match="kernel"):
        statistics.fit_latent(np.ones((1, 10)), [])


def test_encode_bins_and_observed_bins() -> None:
    assert statistics.encode_bins(100.0, [0.0, 9.99, 10.0, 55.5]) == "90015"
    np.testing.assert_array_equal(statistics.observed_bin([-1, 0, 99.9, 100, 120]), [0, 0, 9, 9, 9])


# ----------------------------------------------------------- measurement


def test_observed_scores_use_each_areas_own_answers() -> None:
    from nangluc.items import load_bank

    bank = load_bank().item_bank
    area1 = [i for i, a in enumerate(bank.area) if a == 0 and bank.operational[i]][:3]
    items = np.array([area1])
    overall, areas = statistics.observed_scores(bank, items, np.ones_like(items))
    # Right answers in area 1 only: area 1 rises above the prior's score, the
    # others stay exactly at it (no borrowing across areas).
    _, prior = statistics.observed_scores(bank, np.full((1, 1), -1), np.zeros((1, 1), int))
    assert areas[0, 0] > prior[0, 0] + 5
    np.testing.assert_allclose(areas[0, 1:], prior[0, 1:])
    assert overall[0] == pytest.approx(areas[0].mean())


def test_measurement_model_and_competence_cuts() -> None:
    from nangluc.engine import CITIZEN_TEST
    from nangluc.items import load_bank
    from nangluc.simulations.measurement import measurement_model

    bank = load_bank().item_bank
    model = measurement_model(bank, CITIZEN_TEST, simulees=2000, seed=4)
    assert model.config == CITIZEN_TEST.name and set(model.areas) == set(bank.area_codes)
    again = MeasurementModel.from_json(json.loads(json.dumps(model.to_json())))
    np.testing.assert_allclose(again.overall.pooled, model.overall.pooled, atol=1e-5)
    assert len(model.overall.anchors) > 3
    area, cuts = competence_cuts(bank, "5.2")
    assert area == "5" and np.all(np.diff(cuts[np.isfinite(cuts)]) > 0)
    with pytest.raises(KeyError, match="no operational item"):
        competence_cuts(bank, "9.9")


# ----------------------------------------------------------------- privacy


def test_budget_split_adds_up_to_epsilon_in_opendps_accounting() -> None:
    for epsilon in (0.5, 1.0, 3.0):
        spent = privacy.release_epsilon(epsilon, 5, tuple(privacy.TABLE_SHARES))
        assert spent == pytest.approx(epsilon)
        cohort = privacy.release_epsilon(epsilon, 5, (privacy.COHORT_TABLE,))
        assert cohort == pytest.approx(epsilon)
    ward = privacy.table_noise("ward", 1.0, 5)
    assert ward.overall.scale == pytest.approx(5.0) and ward.area.scale == pytest.approx(25.0)
    with pytest.raises(ValueError, match="epsilon"):
        privacy.table_noise("ward", 0.0, 5)
    with pytest.raises(ValueError, match="unknown release table"):
        privacy.table_noise("street", 1.0, 5)


def test_opendp_noise_has_the_variance_the_fit_assumes() -> None:
    counts = np.zeros(40_000, dtype=np.int64)
    noisy = privacy.add_noise(counts, 4.0)
    assert noisy.dtype == np.int64 and np.any(noisy != 0)
    expected = float(statistics.discrete_laplace_variance(4.0))
    assert noisy.var() == pytest.approx(expected, rel=0.05)
    with pytest.raises(ValueError, match="non-negative integer"):
        privacy.add_noise(np.array([-1]), 1.0)


# ------------------------------------------------------------------- wards

WARDS = load_wards()


def test_ward_list_codes_and_names_are_unique_even_without_marks() -> None:
    codes = [u.code for u in WARDS.units]
    assert len(set(codes)) == len(codes)
    for unit in WARDS.units:
        assert unicodedata.is_normalized("NFC", unit.name)
        assert WARDS.match(unit.full_name) == unit.code


def _tone_variants(name: str) -> str:
    """The old tone placement some keyboards produce ("Hoà" for "Hòa")."""
    return name.replace("òa", "oà").replace("óa", "oá").replace("ủy", "uỷ").replace("ụy", "uỵ")


@settings(max_examples=300, deadline=None)
@given(
    unit=st.sampled_from(WARDS.units),
    prefix=st.sampled_from(
        ["", "Phường ", "phuong ", "P. ", "P.", "Xã ", "xa ", "X. ", "đặc khu "]
    ),
    case=st.sampled_from(["same", "lower", "upper", "title"]),
    spaces=st.sampled_from([" ", "  ", "\u00a0", " \t "]),
    decompose=st.booleans(),
    old_tones=st.booleans(),
    suffix=st.sampled_from(["", ", Đà Nẵng", " - TP Đà Nẵng", "."]),
)
def test_ward_spellings_map_to_one_unit(
    unit, prefix, case, spaces, decompose, old_tones, suffix
) -> None:
    name = _tone_variants(unit.name) if old_tones else unit.name
    text = prefix + spaces.join(name.split()) + suffix
    text = {"same": text, "lower": text.lower(), "upper": text.upper(), "title": text.title()}[case]
    if decompose:
        text = unicodedata.normalize("NFD", text)
    assert WARDS.match("  " + text + " ") == unit.code


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_maps_to_a_unit_other_or_none(text) -> None:
    code = WARDS.match(text)
    assert code in WARDS.codes or code in (OTHER, NONE)
    key = ward_key(text)
    assert key == ward_key(unicodedata.normalize("NFD", text)) or not key
    assert WARDS.match(text) == WARDS.match(unicodedata.normalize("NFC", text))


def test_unmarked_text_matches_only_when_unique_and_marks_are_respected() -> None:
    assert WARDS.match("hai chau") == "hai-chau"
    assert WARDS.match("DIEN BAN DONG") == "dien-ban-dong"
    # "Thanh Bình" (an old ward of Hải Châu) is not "Thạnh Bình" (a commune): marks decide.
    assert WARDS.match("Thanh Bình") == OTHER
    assert WARDS.match("Thạnh Bình") == "thanh-binh"
    assert WARDS.match("") == NONE and WARDS.match(None) == NONE
    aliases = {ward_key("Thạch Thang"): "hai-chau"}
    assert WARDS.match("P. Thạch Thang", aliases) == "hai-chau"


def test_a_bad_ward_file_says_what_is_wrong() -> None:
    good = {"format": 1, "units": [{"code": "a", "kind": "xã", "name": "A"}]}
    assert parse_ward_list(good).codes == ("a",)
    for document, words in (
        ({"format": 2}, "format"),
        ({"format": 1, "units": []}, "units"),
        ({"format": 1, "units": [{"code": "A B", "kind": "xã", "name": "x"}]}, "code"),
        ({"format": 1, "units": [{"code": "a", "kind": "quận", "name": "x"}]}, "kind"),
        (
            {
                "format": 1,
                "units": [
                    {"code": "a", "kind": "xã", "name": "Hòa"},
                    {"code": "b", "kind": "phường", "name": "Hoà"},
                ],
            },
            "matches two units",
        ),
    ):
        with pytest.raises(ValueError, match=words):
            parse_ward_list(document)
