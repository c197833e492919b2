"""LayerSpec.suggest: each kind proposes a layer that fits after a given activation shape (its check passes), or
none where it cannot follow: image kinds after images only, a pool only while there are pixels to halve."""

from __future__ import annotations

import pytest

from ttexplore.runs.kinds import ConvLayerSpec, LayerSpec, PoolLayerSpec, TTConvLayerSpec, all_kinds, features_of

SHAPES = [(1024,), (784,), (7,), (1,), (1, 28, 28), (3, 32, 32), (32, 28, 28), (32, 14, 14), (64, 7, 7), (128, 3, 3),
          (128, 1, 1), (13, 5, 5), (512, 2, 2), (1, 1, 1), (1000, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_every_suggestion_fits_where_it_is_made(shape):
    for kind in all_kinds():
        layer = kind.suggest(shape)
        if layer is None:
            continue
        assert isinstance(layer, kind)
        layer.check(shape)  # raises a ConfigError when it does not fit
        out = layer.out_shape(shape)
        assert len(out) == (1 if layer.flattens else 3)
        assert features_of(out) >= 1


def test_who_follows_what():
    vector, image, pixel = (256,), (32, 14, 14), (128, 1, 1)
    assert [kind.suggest(vector) for kind in (ConvLayerSpec, TTConvLayerSpec, PoolLayerSpec)] == [None, None, None]
    assert PoolLayerSpec.suggest(image) == PoolLayerSpec(2) and PoolLayerSpec.suggest(pixel) is None
    assert TTConvLayerSpec.suggest((1, 28, 28)) is None  # an image's channel: nothing to factorize
    grown = ConvLayerSpec.suggest(image)
    assert grown.channels == 2 * image[0] and grown.out_shape(image)[1:] == image[1:]  # more channels, the side kept
    tt = TTConvLayerSpec.suggest(image)
    assert tt.dense_twin() == grown  # the TT convolution of the same sizes
    assert LayerSpec.suggest(image) is None  # the base class proposes nothing
