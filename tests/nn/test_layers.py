"""TTLinear: equivalence with the dense matrix, gradients, init, clipping, TT-SVD, files."""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ttexplore import TTLinear, param_count
from ttexplore.nn.forward import tt_linear
from ttexplore.tt.init import target_std
from ttexplore.nn.layers import MatrixRankLinear
from ttexplore.nn.kernels import tt_svd

CASES = [
    # (in_modes, out_modes, ranks): d = 1..6, uneven modes, per-core ranks, clipping
    ((6,), (5,), None),
    ((3, 4), (2, 5), 3),
    ((2, 3, 4), (4, 1, 3), [2, 5]),
    ((4, 2, 3, 2), (2, 3, 2, 2), [3, 1, 4]),
    ((2, 2, 3, 2, 2), (3, 2, 2, 1, 2), 2),
    ((2, 2, 2, 2, 2, 2), (2, 3, 2, 2, 1, 2), [2, 3, 4, 3, 2]),
]


def reference_dense(cores: list[torch.Tensor]) -> torch.Tensor:
    """W(i, j) = G_1[j_1, i_1] ... G_d[j_d, i_d], entry by entry, straight from the definition."""
    in_modes = [core.shape[1] for core in cores]
    out_modes = [core.shape[2] for core in cores]
    rows = math.prod(out_modes)
    cols = math.prod(in_modes)
    weight = torch.zeros(rows, cols, dtype=cores[0].dtype)
    for row, out_index in enumerate(itertools.product(*(range(m) for m in out_modes))):
        for col, in_index in enumerate(itertools.product(*(range(n) for n in in_modes))):
            product = torch.ones(1, 1, dtype=cores[0].dtype)
            for core, j, i in zip(cores, in_index, out_index):
                product = product @ core[:, j, i, :]
            weight[row, col] = product[0, 0]
    return weight


@pytest.mark.parametrize("in_modes, out_modes, ranks", CASES)
def test_to_dense_matches_the_definition(in_modes, out_modes, ranks):
    layer = TTLinear(in_modes, out_modes, ranks, dtype=torch.float64)
    expected = reference_dense([core.detach() for core in layer.cores])
    assert layer.to_dense().shape == (layer.out_features, layer.in_features)
    torch.testing.assert_close(layer.to_dense().detach(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("in_modes, out_modes, ranks", CASES)
@pytest.mark.parametrize("leading", [(1,), (7,), (2, 3)])
def test_forward_equals_dense_linear(in_modes, out_modes, ranks, leading):
    torch.manual_seed(1)
    layer = TTLinear(in_modes, out_modes, ranks, dtype=torch.float64)
    with torch.no_grad():
        layer.bias.normal_()
    inputs = torch.randn(*leading, layer.in_features, dtype=torch.float64)
    expected = F.linear(inputs, reference_dense([core.detach() for core in layer.cores]), layer.bias)
    output = layer(inputs)
    assert output.shape == (*leading, layer.out_features)
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("strategy", ["ltr", "rtl", "dense"])
def test_gradcheck_every_strategy(strategy):
    torch.manual_seed(2)
    layer = TTLinear((2, 3, 2), (3, 2, 2), [2, 3], dtype=torch.float64, strategy=strategy)
    inputs = torch.randn(3, layer.in_features, dtype=torch.float64, requires_grad=True)

    def function(x, *cores):
        return tt_linear(x, list(cores), layer.in_modes, layer.out_modes, layer.ranks, strategy)

    cores = [core.detach().clone().requires_grad_(True) for core in layer.cores]
    assert torch.autograd.gradcheck(function, (inputs, *cores), eps=1e-6, atol=1e-8)


def test_gradients_equal_dense_gradients():
    torch.manual_seed(3)
    layer = TTLinear((4, 2, 3), (2, 3, 4), 3, dtype=torch.float64)
    inputs = torch.randn(5, layer.in_features, dtype=torch.float64, requires_grad=True)
    layer(inputs).square().sum().backward()
    tt_grads = [core.grad.clone() for core in layer.cores] + [inputs.grad.clone()]
    layer.zero_grad()
    inputs.grad = None
    F.linear(inputs, layer.to_dense(), layer.bias).square().sum().backward()
    dense_grads = [core.grad for core in layer.cores] + [inputs.grad]
    for tt_grad, dense_grad in zip(tt_grads, dense_grads):
        torch.testing.assert_close(tt_grad, dense_grad, rtol=0, atol=1e-10)


def sampled_entries(draws: list[list[torch.Tensor]], count: int, generator: torch.Generator) -> torch.Tensor:
    """For each draw of cores, ``count`` entries ``W(i, j)`` at uniformly random ``(i, j)``, each rebuilt in
    float64 straight from the definition ``W(i, j) = G_1[j_1, i_1] ... G_d[j_d, i_d]`` (a chain of
    ``r_{k-1} x r_k`` matrices), never building ``W``. A uniform multi-index is a uniform entry, whatever
    the flattening order. All draws go through each core at once, so the work is a few large operations.

    Returns:
        ``(len(draws), count)``.

    Complexity: O(draws * count * sum_k r_{k-1} r_k).
    """
    draw_count = len(draws)
    draw_index = torch.arange(draw_count).repeat_interleave(count)  # (D S,)
    chains = torch.ones(draw_count * count, 1, 1, dtype=torch.float64)  # (D S, 1, r_0 = 1)
    for cores in zip(*draws):  # core k of every draw, each (r_{k-1}, n_k, m_k, r_k)
        stacked = torch.stack([core.detach() for core in cores]).to(torch.float64)  # (D, r_{k-1}, n_k, m_k, r_k)
        in_index = torch.randint(stacked.shape[2], (draw_count * count,), generator=generator)
        out_index = torch.randint(stacked.shape[3], (draw_count * count,), generator=generator)
        slices = stacked.permute(0, 2, 3, 1, 4)[draw_index, in_index, out_index]  # (D S, r_{k-1}, r_k)
        chains = torch.bmm(chains, slices)  # (D S, 1, r_k)
    return chains.reshape(draw_count, count)


#: Draws of the cores and entries of ``W`` sampled per draw by the init-std test.
INIT_DRAWS, INIT_ENTRIES = 128, 4096


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("init", ["glorot", "he", "lecun"])
def test_init_gives_the_dense_std_for_every_depth(d, init):
    # 4096 x 4096 split into d modes: E[W(i, j)^2] over draws of the cores must be the dense init's variance.
    # Each of 128 draws samples 4096 entries (524 288 in all, rebuilt from the cores instead of the 16.8 M of W):
    # an unbiased estimate whose standard error, from the spread of the 128 per-draw means, is 0.003 at d = 2 and
    # 0.03 at d = 6 (the draw-to-draw spread of the cores dominates, not the sampling of entries). 4 standard
    # errors is the tolerance; over 100 seeds the largest deviation seen was 2.8. A per-core formula off by
    # (r + 1) / r at one boundary (x1.25) fails at every depth; one giving W ~ 0 fails by orders of magnitude.
    modes = {2: (64, 64), 3: (16, 16, 16), 4: (8, 8, 8, 8), 5: (4, 8, 4, 8, 4), 6: (4, 4, 4, 4, 4, 4)}[d]
    generator = torch.Generator().manual_seed(d)
    layer = TTLinear(modes, modes, 4, init=init)
    assert layer.ranks == (4,) * (d - 1)  # no clipping: every boundary has rank 4
    draws = []
    for _ in range(INIT_DRAWS):
        layer.reset_parameters(generator=generator)
        draws.append([core.detach().clone() for core in layer.cores])
    mean_squares = sampled_entries(draws, INIT_ENTRIES, generator).square().mean(dim=1)  # (D,)
    ratios = mean_squares / target_std(init, 4096, 4096) ** 2
    ratio, standard_error = ratios.mean().item(), ratios.std().item() / INIT_DRAWS**0.5
    assert standard_error < 0.05, f"the estimate is too noisy to judge at d={d}: standard error {standard_error:.3f}"
    assert abs(ratio - 1) < 4 * standard_error, f"E[W^2] / target = {ratio:.3f} +- {standard_error:.3f} at d={d}"


def test_sampled_entries_are_entries_of_the_dense_matrix():
    generator = torch.Generator().manual_seed(0)
    layers = [TTLinear((2, 3, 2), (3, 2, 2), [2, 3], dtype=torch.float64) for _ in range(2)]
    entries = sampled_entries([list(layer.cores) for layer in layers], 500, generator)
    assert entries.shape == (2, 500)
    for layer, samples in zip(layers, entries):
        values = reference_dense([core.detach() for core in layer.cores]).flatten()
        distance = (samples[:, None] - values[None, :]).abs().min(dim=1).values
        assert distance.max() < 1e-12  # every sample is an entry of its own draw's W
        assert len({round(value, 9) for value in samples.tolist()}) > 100  # and they are spread over W's 144 entries


def test_clipping_is_recorded_and_warned_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = TTLinear((2, 4), (2, 4), 10)
    clip_warnings = [w for w in caught if "clipped" in str(w.message)]
    assert len(clip_warnings) == 1
    assert layer.ranks == (4,)
    assert layer.clipped_ranks == ((1, 10, 4),)
    assert layer.cores[0].shape == (1, 2, 2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TTLinear((2, 4), (2, 4), 4)  # nothing to clip: no warning


def test_wrong_input_width_is_a_clear_error():
    layer = TTLinear((4, 4), (4, 4), 2)
    with pytest.raises(ValueError, match="expects inputs with 16 features"):
        layer(torch.randn(3, 15))


def test_param_count_agrees_with_parameters():
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), 3)
    cores = sum(core.numel() for core in layer.cores)
    assert cores == param_count((4, 8, 8, 4), (4, 8, 8, 4), 3) == layer.param_count() == 1248
    assert layer.param_count(include_bias=True) == 1248 + 1024


def test_from_linear_is_exact_at_full_rank_and_keeps_bias_dtype():
    torch.manual_seed(4)
    linear = nn.Linear(24, 12).double()
    layer = TTLinear.from_linear(linear, (2, 3, 4), (3, 2, 2))
    assert layer.cores[0].dtype == torch.float64
    torch.testing.assert_close(layer.to_dense(), linear.weight, rtol=0, atol=1e-10)
    torch.testing.assert_close(layer.bias, linear.bias)
    assert layer.approximation_error < 1e-12
    inputs = torch.randn(5, 24, dtype=torch.float64)
    torch.testing.assert_close(layer(inputs), linear(inputs), rtol=0, atol=1e-10)


def test_from_linear_error_falls_with_rank_and_is_reported_truthfully():
    torch.manual_seed(5)
    linear = nn.Linear(64, 64)
    errors = []
    for rank in (1, 2, 4, 8, 16):
        layer = TTLinear.from_linear(linear, (4, 4, 4), (4, 4, 4), ranks=rank)
        actual = (torch.linalg.matrix_norm(layer.to_dense() - linear.weight) / torch.linalg.matrix_norm(linear.weight)).item()
        assert layer.approximation_error == pytest.approx(actual, rel=1e-4, abs=1e-6)
        assert max(layer.ranks) <= rank
        errors.append(layer.approximation_error)
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert errors[0] > 0.5 and errors[-1] < 1e-4  # rank 16 is the maximal useful rank here: exact


def test_from_linear_meets_a_relative_error_target():
    torch.manual_seed(6)
    # a weight of low TT rank plus small noise: the target is reached with small ranks
    truth = TTLinear((4, 4, 4), (4, 4, 4), 2, dtype=torch.float64)
    linear = nn.Linear(64, 64).double()
    with torch.no_grad():
        linear.weight.copy_(truth.to_dense() + 1e-4 * torch.randn(64, 64, dtype=torch.float64))
    layer = TTLinear.from_linear(linear, (4, 4, 4), (4, 4, 4), rel_error=0.05)
    assert layer.approximation_error <= 0.05
    assert layer.ranks == (2, 2)


def test_tt_svd_error_bound():
    torch.manual_seed(7)
    tensor = torch.randn(4, 5, 6, 3, dtype=torch.float64)
    cores, error = tt_svd(tensor, rel_error=0.3)
    rebuilt = cores[0]
    for core in cores[1:]:
        rebuilt = torch.tensordot(rebuilt, core, dims=1)
    actual = (torch.linalg.vector_norm(rebuilt.squeeze(0).squeeze(-1) - tensor) / torch.linalg.vector_norm(tensor)).item()
    assert actual == pytest.approx(error, rel=1e-6)
    assert error <= 0.3


def test_state_dict_round_trip_and_file(tmp_path):
    torch.manual_seed(8)
    layer = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), [2, 3, 2])
    copy = TTLinear((4, 8, 8, 4), (4, 8, 8, 4), [2, 3, 2])
    copy.load_state_dict(layer.state_dict())
    inputs = torch.randn(3, 1024)
    torch.testing.assert_close(copy(inputs), layer(inputs))
    path = tmp_path / "layer.pt"
    layer.save(path)
    loaded = TTLinear.load(path)
    assert loaded.ranks == (2, 3, 2) and loaded.in_modes == (4, 8, 8, 4)
    torch.testing.assert_close(loaded(inputs), layer(inputs))


def test_load_rejects_a_foreign_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a TTLinear"):
        TTLinear.load(path)


def test_matrix_rank_baseline():
    torch.manual_seed(9)
    layer = MatrixRankLinear(30, 20, 3).double()
    inputs = torch.randn(4, 30, dtype=torch.float64)
    torch.testing.assert_close(layer(inputs), F.linear(inputs, layer.to_dense(), layer.bias))
    assert layer.param_count() == 3 * 50
    assert torch.linalg.matrix_rank(layer.to_dense()).item() == 3
