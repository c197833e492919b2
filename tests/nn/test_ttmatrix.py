"""TTMatrix in float64 against independent numpy computations: TT-SVD, rounding, norms, inner products, sums,
the singular values of the unfoldings, and the TTLinear round trip."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from ttexplore import TTMatrix
from ttexplore.nn.layers import MatrixRankLinear, TTLinear
from ttexplore.tt.ttmath import max_useful_ranks


# ---------------------------------------------------------------------------- independent references (numpy)
def random_tt(in_modes, out_modes, ranks, seed, dtype=torch.float64) -> TTMatrix:
    """Random cores (standard normal), not made by any code under test."""
    generator = torch.Generator().manual_seed(seed)
    full = (1, *ranks, 1)
    cores = [torch.randn(full[k], n, m, full[k + 1], generator=generator, dtype=torch.float64)
             for k, (n, m) in enumerate(zip(in_modes, out_modes))]
    return TTMatrix([core.to(dtype) for core in cores])


def numpy_dense(cores) -> np.ndarray:
    """W(i, j) = G_1[j_1, i_1] ... G_d[j_d, i_d], by numpy tensordots, shaped (M, N)."""
    arrays = [core.detach().cpu().double().numpy() for core in cores]
    d = len(arrays)
    result = arrays[0]  # (1, n_1, m_1, r_1)
    for array in arrays[1:]:
        result = np.tensordot(result, array, axes=1)  # (1, n_1, m_1, ..., n_k, m_k, r_k)
    result = result.reshape(result.shape[1:-1])  # (n_1, m_1, ..., n_d, m_d)
    order = [2 * k + 1 for k in range(d)] + [2 * k for k in range(d)]  # (m_1..m_d, n_1..n_d)
    result = result.transpose(order)
    rows = math.prod(array.shape[2] for array in arrays)
    return result.reshape(rows, -1)


def paired(weight: np.ndarray, in_modes, out_modes) -> np.ndarray:
    """W (M, N) as the d-way tensor (n_1 m_1, ..., n_d m_d) TT-SVD factorises."""
    d = len(in_modes)
    tensor = weight.reshape(*out_modes, *in_modes)
    order = [index for k in range(d) for index in (d + k, k)]
    return tensor.transpose(order).reshape([n * m for n, m in zip(in_modes, out_modes)])


def unfolding(weight: np.ndarray, in_modes, out_modes, k: int) -> np.ndarray:
    """The k-th unfolding (1-based): rows (n_1 m_1 .. n_k m_k), columns the rest."""
    tensor = paired(weight, in_modes, out_modes)
    return tensor.reshape(math.prod(tensor.shape[:k]), -1)


def numpy_tt_svd(weight: np.ndarray, in_modes, out_modes, ranks) -> tuple[np.ndarray, float]:
    """TT-SVD with fixed ranks, numpy only: the rebuilt (M, N) matrix and its relative error."""
    tensor = paired(weight, in_modes, out_modes)
    shape = tensor.shape
    remainder, rank_in, left_factors = tensor, 1, []
    for k in range(len(shape) - 1):
        u, s, vt = np.linalg.svd(remainder.reshape(rank_in * shape[k], -1), full_matrices=False)
        rank = min(ranks[k], s.size)
        left_factors.append(u[:, :rank].reshape(rank_in, shape[k], rank))
        remainder = s[:rank, None] * vt[:rank]
        rank_in = rank
    rebuilt = remainder.reshape(rank_in, -1)
    for factor in reversed(left_factors):
        # (r_{k-1} p_k, r_k) @ (r_k, p_{k+1} .. p_d)
        rebuilt = factor.reshape(-1, factor.shape[-1]) @ rebuilt.reshape(factor.shape[-1], -1)
    # rebuilt: (n_1 m_1 .. n_d m_d) flattened -> (n_1, m_1, ..., n_d, m_d) -> (M, N)
    d = len(in_modes)
    rebuilt = rebuilt.reshape([size for pair in zip(in_modes, out_modes) for size in pair])
    rebuilt = rebuilt.transpose([2 * k + 1 for k in range(d)] + [2 * k for k in range(d)]).reshape(weight.shape)
    return rebuilt, np.linalg.norm(rebuilt - weight) / np.linalg.norm(weight)


def dense(tt: TTMatrix) -> np.ndarray:
    return numpy_dense(tt.cores)


# ---------------------------------------------------------------------------- dense <-> TT
@pytest.mark.parametrize("in_modes, out_modes", [((6,), (5,)), ((2, 3), (3, 2)), ((2, 3, 4), (3, 2, 2)),
                                                 ((2, 2, 3, 2), (3, 1, 2, 2))])
def test_from_dense_is_exact_at_full_rank_and_to_dense_gives_w_back(in_modes, out_modes):
    torch.manual_seed(1)
    weight = torch.randn(math.prod(out_modes), math.prod(in_modes), dtype=torch.float64)
    tt = TTMatrix.from_dense(weight, in_modes, out_modes)
    assert tt.ranks == tuple(max_useful_ranks(in_modes, out_modes))
    assert (tt.in_modes, tt.out_modes, tt.shape, tt.d) == (in_modes, out_modes, tuple(weight.shape), len(in_modes))
    assert tt.params == sum(core.numel() for core in tt.cores)
    np.testing.assert_allclose(dense(tt), weight.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(tt.to_dense().numpy(), weight.numpy(), rtol=0, atol=1e-12)
    assert tt.full().shape == weight.shape
    assert tt.approximation_error < 1e-14


def test_to_dense_matches_the_definition():
    tt = random_tt((2, 3, 2), (3, 2, 4), (3, 2), seed=2)
    np.testing.assert_allclose(tt.to_dense().numpy(), dense(tt), rtol=1e-13, atol=1e-12)


def test_from_dense_at_capped_ranks_is_numpy_tt_svd_and_clips_silently():
    torch.manual_seed(3)
    weight = torch.randn(24, 24, dtype=torch.float64)
    modes = (2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tt = TTMatrix.from_dense(weight, modes, modes, ranks=3)
        assert TTMatrix.from_dense(weight, modes, modes, ranks=10_000).ranks == tuple(max_useful_ranks(modes, modes))
    reference, error = numpy_tt_svd(weight.numpy(), modes, modes, (3, 3))
    assert tt.ranks == (3, 3)
    np.testing.assert_allclose(dense(tt), reference, rtol=0, atol=1e-10)
    assert tt.approximation_error == pytest.approx(error, rel=1e-10)


# ---------------------------------------------------------------------------- rounding
@pytest.mark.parametrize("in_modes, out_modes, ranks", [((2, 3, 2), (3, 2, 4), (3, 4)), ((2, 2, 2, 2), (2, 2, 2, 2), (3, 5, 2)),
                                                        ((3, 4), (2, 5), (4,))])
def test_round_at_the_same_ranks_is_the_identity(in_modes, out_modes, ranks):
    tt = random_tt(in_modes, out_modes, ranks, seed=4)
    for rounded in (tt.round(), tt.round(max_rank=list(ranks)), tt.round(rel_error=0.0)):
        assert rounded.ranks == ranks
        np.testing.assert_allclose(dense(rounded), dense(tt), rtol=0, atol=1e-10 * np.abs(dense(tt)).max())
        assert rounded.approximation_error < 1e-12


def test_rounding_a_doubled_tt_gives_the_ranks_back_and_twice_the_matrix():
    tt = random_tt((2, 3, 2, 2), (2, 2, 3, 2), (2, 3, 2), seed=5)
    doubled = tt + tt
    assert doubled.ranks == (4, 6, 4)
    for rounded in (doubled.round(max_rank=tt.ranks), doubled.round(rel_error=1e-10)):
        assert rounded.ranks == tt.ranks
        np.testing.assert_allclose(dense(rounded), 2 * dense(tt), rtol=0, atol=1e-10 * np.abs(dense(tt)).max())
        assert rounded.approximation_error < 1e-10


@pytest.mark.parametrize("target", [(2, 3), (1, 1), (4, 2)])
def test_round_equals_tt_svd_of_the_dense_matrix_at_the_same_ranks(target):
    modes_in, modes_out = (2, 3, 4), (3, 2, 2)
    tt = random_tt(modes_in, modes_out, (5, 6), seed=6)
    rounded = tt.round(max_rank=list(target))
    reference, error = numpy_tt_svd(dense(tt), modes_in, modes_out, target)
    assert rounded.ranks == target
    scale = np.abs(reference).max()
    np.testing.assert_allclose(dense(rounded), reference, rtol=0, atol=1e-10 * scale)
    assert rounded.approximation_error == pytest.approx(error, rel=1e-9)
    measured = np.linalg.norm(dense(rounded) - dense(tt)) / np.linalg.norm(dense(tt))
    assert rounded.approximation_error == pytest.approx(measured, rel=1e-9)
    # the singular values of the result's unfoldings are the kept ones of the dense TT-SVD's
    for k, spectrum in enumerate(rounded.singular_values(), start=1):
        expected = np.linalg.svd(unfolding(reference, modes_in, modes_out, k), compute_uv=False)[: spectrum.numel()]
        np.testing.assert_allclose(spectrum.numpy(), expected, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_the_relative_error_bound_holds_on_random_matrices(d):
    in_modes, out_modes = (2, 3, 2, 2, 2)[:d], (3, 2, 2, 2, 1)[:d]
    rng = np.random.default_rng(d)
    weight = rng.standard_normal((math.prod(out_modes), math.prod(in_modes)))
    exact = TTMatrix.from_dense(torch.from_numpy(weight), in_modes, out_modes)
    for rel_error in (0.05, 0.2, 0.5):
        rounded = exact.round(rel_error=rel_error)
        measured = np.linalg.norm(dense(rounded) - weight) / np.linalg.norm(weight)
        assert measured <= rel_error + 1e-12
        assert rounded.approximation_error == pytest.approx(measured, rel=1e-8, abs=1e-13)
        assert all(rank <= need for rank, need in zip(rounded.ranks, exact.effective_ranks(rel_error)))
        # from an exact representation, rounding is TT-SVD of the dense matrix
        direct = TTMatrix.from_dense(torch.from_numpy(weight), in_modes, out_modes, rel_error=rel_error)
        assert direct.ranks == rounded.ranks
        np.testing.assert_allclose(dense(rounded), dense(direct), rtol=0, atol=1e-10)


def test_rounding_a_sum_and_measuring_the_error_without_w():
    first = random_tt((2, 3, 2), (2, 2, 3), (2, 3), seed=7)
    second = random_tt((2, 3, 2), (2, 2, 3), (3, 2), seed=8)
    total = first + 0.1 * second
    rounded = total.round(max_rank=3)
    reference = dense(first) + 0.1 * dense(second)
    measured = np.linalg.norm(dense(rounded) - reference) / np.linalg.norm(reference)
    assert float((total - rounded).norm() / total.norm()) == pytest.approx(measured, rel=1e-9)
    assert rounded.approximation_error == pytest.approx(measured, rel=1e-9)


# ---------------------------------------------------------------------------- algebra
def test_norm_and_dot_against_dense():
    first = random_tt((2, 3, 2), (3, 2, 2), (3, 2), seed=9)
    second = random_tt((2, 3, 2), (3, 2, 2), (2, 4), seed=10)
    assert float(first.norm()) == pytest.approx(np.linalg.norm(dense(first)), rel=1e-13)
    assert float(first.dot(second)) == pytest.approx(np.sum(dense(first) * dense(second)), rel=1e-12)
    assert float(first.dot(first)) == pytest.approx(np.linalg.norm(dense(first)) ** 2, rel=1e-13)
    # a tiny difference keeps its digits (orthogonalisation, not the Gram contraction)
    nearby = first + 1e-9 * second
    assert float((nearby - first).norm()) == pytest.approx(1e-9 * np.linalg.norm(dense(second)), rel=1e-5)


def test_sums_differences_and_scalar_products_against_dense():
    first = random_tt((2, 3, 2), (3, 2, 2), (3, 2), seed=11)
    second = random_tt((2, 3, 2), (3, 2, 2), (2, 4), seed=12)
    a, b = dense(first), dense(second)
    assert (first + second).ranks == (5, 6) and (first - second).ranks == (5, 6)
    cases = {"sum": (first + second, a + b), "difference": (first - second, a - b), "left": (2.5 * first, 2.5 * a),
             "right": (first * -3, -3 * a), "negation": (-first, -a), "division": (first / 4, a / 4),
             "tensor": (first * torch.tensor(0.5, dtype=torch.float64), 0.5 * a)}
    for name, (value, expected) in cases.items():
        np.testing.assert_allclose(dense(value), expected, rtol=0, atol=1e-12, err_msg=name)
    single = random_tt((5,), (4,), (), seed=13) + random_tt((5,), (4,), (), seed=14)
    np.testing.assert_allclose(dense(single), dense(random_tt((5,), (4,), (), 13)) + dense(random_tt((5,), (4,), (), 14)))


def test_singular_values_are_those_of_the_dense_unfoldings():
    in_modes, out_modes = (2, 3, 2, 2), (2, 2, 3, 1)
    tt = random_tt(in_modes, out_modes, (3, 4, 2), seed=15)
    weight = dense(tt)
    spectra = tt.singular_values()
    assert len(spectra) == 3 and all(spectrum.dtype == torch.float64 for spectrum in spectra)
    for k, spectrum in enumerate(spectra, start=1):
        expected = np.linalg.svd(unfolding(weight, in_modes, out_modes, k), compute_uv=False)
        count = spectrum.numel()
        np.testing.assert_allclose(spectrum.numpy(), expected[:count], rtol=0, atol=1e-12 * expected[0])
        assert np.all(expected[count:] < 1e-12 * expected[0])  # the unfolding has no more than the TT rank


def test_effective_ranks_follow_the_spectra():
    weight = torch.from_numpy(np.random.default_rng(16).standard_normal((16, 16)))
    tt = TTMatrix.from_dense(weight, (4, 4), (4, 4))
    spectrum = np.linalg.svd(unfolding(weight.numpy(), (4, 4), (4, 4), 1), compute_uv=False)
    tails = np.sqrt(np.cumsum((spectrum**2)[::-1])[::-1]) / np.linalg.norm(spectrum)  # tails[r] = error of rank r
    for rel_error in (0.1, 0.4, 0.8):
        expected = int(np.argmax(np.append(tails, 0.0) <= rel_error))
        assert tt.effective_ranks(rel_error) == (expected,)


# ---------------------------------------------------------------------------- dtype, device, grad
def test_dtype_follows_the_cores_and_rounding_computes_in_float64():
    tt64 = random_tt((2, 3, 2), (3, 2, 2), (3, 4), seed=17)
    tt32 = tt64.to(torch.float32)
    assert tt32.dtype == torch.float32 and tt32.device == torch.device("cpu")
    assert tt32.to(torch.float64).dtype == torch.float64
    rounded = tt32.round(max_rank=2)
    assert rounded.dtype == torch.float32 and all(core.dtype == torch.float32 for core in rounded.cores)
    # the error reached by the float32 cores, measured in float64 against the float32 input
    measured = np.linalg.norm(dense(rounded) - dense(tt32)) / np.linalg.norm(dense(tt32))
    assert rounded.approximation_error == pytest.approx(measured, rel=1e-6)
    assert rounded.approximation_error == pytest.approx(tt64.round(max_rank=2).approximation_error, rel=1e-5)
    # at the same ranks only the cast back to bfloat16 errs: the error reported is that one, not zero
    half = tt64.to(torch.bfloat16)
    recast = half.round()
    measured = np.linalg.norm(dense(recast) - dense(half)) / np.linalg.norm(dense(half))
    assert recast.dtype == torch.bfloat16 and measured > 1e-4
    assert recast.approximation_error == pytest.approx(measured, rel=1e-6)
    assert (tt32 + tt32).dtype == torch.float32 and (2 * tt32).dtype == torch.float32
    assert (tt32 + tt64).dtype == torch.float64  # promoted, as torch does
    weight32 = torch.randn(6, 6)
    made = TTMatrix.from_dense(weight32, (2, 3), (3, 2), ranks=2)
    assert made.dtype == torch.float32
    measured = np.linalg.norm(dense(made) - weight32.double().numpy()) / np.linalg.norm(weight32.double().numpy())
    assert made.approximation_error == pytest.approx(measured, rel=1e-9)


def test_rounding_detaches_cores_that_need_grad_and_dot_stays_differentiable():
    tt = random_tt((2, 3), (3, 2), (3,), seed=18)
    cores = [core.clone().requires_grad_() for core in tt.cores]
    with_grad = TTMatrix(cores)
    rounded = with_grad.round(max_rank=2)
    assert not any(core.requires_grad for core in rounded.cores)
    assert float(with_grad.norm()) == pytest.approx(np.linalg.norm(dense(tt)))
    other = random_tt((2, 3), (3, 2), (2,), seed=19)
    assert torch.autograd.gradcheck(lambda *given: TTMatrix(given).dot(other), tuple(cores))
    assert torch.autograd.gradcheck(lambda *given: (TTMatrix(given) + 2 * other).to_dense(), tuple(cores))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")
def test_the_device_follows_the_cores_on_cuda():
    tt = random_tt((4, 8, 8, 4), (4, 8, 8, 4), (6, 6, 6), seed=20)
    on_gpu = tt.to("cuda", torch.float32)
    rounded = on_gpu.round(max_rank=3)
    assert rounded.device.type == "cuda" and rounded.dtype == torch.float32
    assert rounded.approximation_error == pytest.approx(tt.round(max_rank=3).approximation_error, rel=1e-4)
    assert on_gpu.norm().device.type == "cuda" and (on_gpu + on_gpu).device.type == "cuda"
    assert all(spectrum.device.type == "cuda" for spectrum in on_gpu.singular_values())
    layer = TTLinear.from_tt(rounded, bias=True)
    assert layer.cores[0].device.type == "cuda" and layer.bias.device.type == "cuda"


# ---------------------------------------------------------------------------- bad inputs
TT = random_tt((2, 3, 2), (3, 2, 2), (2, 2), seed=21)


@pytest.mark.parametrize("rel_error", [-0.1, 1.0, 1.5, math.nan, math.inf, "0.1", True])
def test_round_refuses_a_meaningless_error_target(rel_error):
    with pytest.raises(ValueError, match="rel_error .* must be"):
        TT.round(rel_error=rel_error)
    with pytest.raises(ValueError, match="rel_error .* must be"):
        TTMatrix.from_dense(torch.zeros(12, 12), (2, 3, 2), (3, 2, 2), rel_error=rel_error)


@pytest.mark.parametrize("max_rank", [0, -1, 2.5, [True, 2], [0, 2], [2], [2, 2, 2]])
def test_round_refuses_bad_rank_caps(max_rank):
    with pytest.raises(ValueError, match="max_rank"):
        TT.round(max_rank=max_rank)


def test_algebra_refuses_mismatched_partners():
    other = random_tt((3, 2, 2), (3, 2, 2), (2, 2), seed=22)
    for operation in (lambda: TT + other, lambda: TT - other, lambda: TT.dot(other)):
        with pytest.raises(ValueError, match="same modes"):
            operation()
    with pytest.raises(TypeError):
        TT + 1.0
    with pytest.raises(ValueError, match="scalar"):
        TT * torch.ones(2)
    with pytest.raises(ValueError, match="divided by 0"):
        TT / 0


def test_the_constructor_and_from_dense_refuse_what_does_not_chain():
    core = torch.zeros(1, 2, 2, 3)
    problems = {
        "share their rank": [core, torch.zeros(2, 2, 2, 1)],
        "rank 1": [torch.zeros(2, 2, 2, 1)],
        "4-D": [torch.zeros(1, 2, 1)],
        "floating-point": [torch.zeros(1, 2, 2, 1, dtype=torch.int64)],
        "one dtype": [core, torch.zeros(3, 2, 2, 1, dtype=torch.float64)],
        "at least one core": [],
    }
    for message, cores in problems.items():
        with pytest.raises(ValueError, match=message):
            TTMatrix(cores)
    with pytest.raises(ValueError, match="check the modes"):
        TTMatrix.from_dense(torch.zeros(12, 10), (2, 3, 2), (3, 2, 2))
    with pytest.raises(ValueError, match="2-D floating-point"):
        TTMatrix.from_dense(torch.zeros(12, 12, dtype=torch.int64), (2, 3, 2), (3, 2, 2))
    with pytest.raises(ValueError, match="at least 1"):
        TTMatrix.from_dense(torch.zeros(12, 12), (2, 3, 2), (3, 2, 2), ranks=0)


def test_rounding_a_zero_matrix_gives_rank_one_and_no_error():
    zero = TT * 0.0
    assert zero.round(rel_error=0.1).ranks == (1, 1) and zero.round(rel_error=0.1).approximation_error == 0.0
    assert float(zero.norm()) == 0.0


# ---------------------------------------------------------------------------- TTLinear
def test_tt_matrix_and_from_tt_round_trip_give_equal_outputs():
    torch.manual_seed(23)
    layer = TTLinear((4, 2, 3), (2, 3, 4), ranks=[3, 4], dtype=torch.float64)
    with torch.no_grad():
        layer.bias.normal_()
    tt = layer.tt_matrix()
    assert tt.ranks == layer.ranks and not any(core.requires_grad for core in tt.cores)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rebuilt = TTLinear.from_tt(tt, bias=layer.bias, strategy="ltr")
    inputs = torch.randn(5, 24, dtype=torch.float64)
    torch.testing.assert_close(rebuilt(inputs), layer(inputs), rtol=0, atol=1e-12)
    assert rebuilt.ranks == layer.ranks and rebuilt.strategy == "ltr" and rebuilt.cores[0].dtype == torch.float64
    assert layer.approximation_error is None and rebuilt.approximation_error is None
    with torch.no_grad():
        layer.cores[0].add_(1.0)  # the value is a copy: training the layer further leaves it alone
    np.testing.assert_allclose(dense(rebuilt.tt_matrix()), dense(tt))


def test_from_tt_takes_a_rounded_value_with_its_error_and_refuses_oversized_ranks():
    tt = random_tt((4, 4), (4, 4), (10,), seed=24).to(torch.float32)
    rounded = tt.round(max_rank=3)
    layer = TTLinear.from_tt(rounded, bias=True)
    assert layer.ranks == (3,) and layer.cores[0].dtype == torch.float32
    assert layer.approximation_error == rounded.approximation_error
    assert layer.bias is not None and not layer.bias.any()
    assert TTLinear.from_tt(rounded).bias is None
    with pytest.raises(ValueError, match=r"round\(\) first"):
        TTLinear.from_tt(tt + tt)  # ranks 20 above the maximal useful 16
    with pytest.raises(ValueError, match="bias has shape"):
        TTLinear.from_tt(rounded, bias=torch.zeros(15))


def test_from_linear_is_from_dense_then_from_tt():
    torch.manual_seed(25)
    linear = nn.Linear(24, 12)
    layer = TTLinear.from_linear(linear, (2, 3, 4), (3, 2, 2), ranks=2)
    tt = TTMatrix.from_dense(linear.weight.detach(), (2, 3, 4), (3, 2, 2), ranks=2)
    assert layer.ranks == tt.ranks and layer.approximation_error == pytest.approx(tt.approximation_error)
    torch.testing.assert_close(layer.to_dense(), tt.to_dense())
    torch.testing.assert_close(layer.bias, linear.bias)


# ---------------------------------------------------------------------------- MatrixRankLinear (item 7)
def test_matrix_rank_linear_takes_dtype_and_device():
    layer = MatrixRankLinear(10, 6, 2, dtype=torch.float64, device="cpu")
    assert all(parameter.dtype == torch.float64 for parameter in layer.parameters())
    assert layer(torch.randn(3, 10, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("arguments, field, why", [((10, 6, 2.5), "rank", "not a whole number"),
                                                   ((10, 6, 0), "rank", "below 1"), ((10, 6, True), "rank", "yes/no"),
                                                   ((0, 6, 2), "in_features", "below 1"),
                                                   ((10, -1, 2), "out_features", "below 1")])
def test_matrix_rank_linear_refuses_bad_sizes(arguments, field, why):
    with pytest.raises(ValueError, match=f"^{field} .*{why}"):
        MatrixRankLinear(*arguments)


def test_matrix_rank_linear_reads_a_whole_number_written_as_text_as_the_cli_does():
    assert MatrixRankLinear(10, 6, "2").rank == 2
