import numpy as np

from dpfl_course.exercises import nb11


def test_reference_solutions_pass():
    assert nb11.check_mask_update(nb11.mask_update).passed
    assert nb11.check_lagrange_at_zero(nb11.lagrange_at_zero).passed
    assert nb11.check_noise_share_std(nb11.noise_share_std).passed


def test_mask_checker_rejects_masks_that_do_not_cancel():
    # plausible mistake: every client ADDS all its pairwise masks, so they double instead of cancelling
    def wrong(x, u, pair_masks, modulus):
        y = np.asarray(x)
        for (a, b), m in pair_masks.items():
            if u in (a, b):
                y = y + m
        return y % modulus

    fb = nb11.check_mask_update(wrong)
    assert not fb.passed and "subtracted" in fb.message


def test_mask_checker_rejects_flipped_signs_and_unreduced_uploads():
    # plausible mistake: the larger id adds and the smaller subtracts — the sum is right, the rule is not
    def flipped(x, u, pair_masks, modulus):
        return (-(nb11.mask_update(-np.asarray(x), u, pair_masks, modulus))) % modulus

    fb = nb11.check_mask_update(flipped)
    assert not fb.passed and "larger ids" in fb.message

    def unreduced(x, u, pair_masks, modulus):  # forgot the final mod
        y = np.asarray(x, dtype=np.int64)
        for (a, b), m in pair_masks.items():
            y = y + m if a == u else (y - m if b == u else y)
        return y

    fb = nb11.check_mask_update(unreduced)
    assert not fb.passed and "reduced mod" in fb.message


def test_lagrange_checker_rejects_float_division():
    # plausible mistake: ordinary division instead of the modular inverse
    def wrong(points, prime):
        total = 0
        for i, (xi, yi) in enumerate(points):
            term = yi
            for j, (xj, _) in enumerate(points):
                if j != i:
                    term = term * xj / (xj - xi)
            total += term
        return total % prime

    assert not nb11.check_lagrange_at_zero(wrong).passed


def test_noise_checker_rejects_sigma_over_n():
    # plausible mistake: dividing the std (not the variance) by n — the sum then has std σ/√n
    fb = nb11.check_noise_share_std(lambda sigma, n: sigma / n)
    assert not fb.passed and "expected" in fb.message


def test_noise_checker_statistical_part_can_fail():
    # Finding d: a function right on the listed cases only (a lookup table) and σ/n elsewhere
    table = {(1.0, 1): 1.0, (1.0, 4): 0.5, (2.0, 100): 0.2, (3.0, 9): 1.0, (0.5, 10): 0.5 / np.sqrt(10)}

    def memorised(sigma, n):
        return table.get((sigma, n), sigma / n)

    fb = nb11.check_noise_share_std(memorised)
    assert not fb.passed and "σ = 2.0, n = 25" in fb.message


def test_skeletons_give_messages_not_tracebacks():
    def skeleton(*args):
        raise NotImplementedError("Student exercise")

    for check in (nb11.check_mask_update, nb11.check_lagrange_at_zero, nb11.check_noise_share_std):
        fb = check(skeleton)
        assert not fb.passed and "NotImplementedError" in fb.message
