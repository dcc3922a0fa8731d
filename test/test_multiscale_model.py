"""The multi-scale generator: shapes, scales, recursion, identity start, config checks."""

import pytest
import torch

from video_predictor.models import PredictorGraph, build_model
from video_predictor.models.multiscale import MultiScaleConfig, MultiScaleGenerator

SMALL = {
    "input_frames": 3,
    "scales": [
        {"features": [8], "kernels": [3, 3]},
        {"features": [8], "kernels": [3, 3]},
        {"features": [4], "kernels": [3, 3]},
        {"features": [4], "kernels": [3, 3]},
    ],
}


def frames(batch=2, n=3, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 3, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize("head", ["warp", "pixels"])
def test_one_step_predicts_every_scale_coarse_to_fine(head):
    model = MultiScaleGenerator(MultiScaleConfig(**SMALL, head=head))
    predictions, log_scale, change, roughness = model(frames())
    assert [p.shape[-2:] for p in predictions] == [(4, 6), (8, 12), (16, 24), (32, 48)]
    assert all(p.shape[:2] == (2, 3) for p in predictions)
    assert all(p.abs().max() <= 1.0 for p in predictions)
    assert log_scale.shape == (2, 1, 32, 48)
    assert change.ndim == 0 and change.item() >= 0 and roughness.item() >= 0


def test_untrained_warp_head_copies_the_last_frame():
    model = MultiScaleGenerator(MultiScaleConfig(**SMALL, head="warp"))
    x = frames()
    predicted, std = model.rollout(x, horizon=4)
    assert predicted.shape == (2, 4, 3, 32, 48)
    for k in range(4):
        torch.testing.assert_close(predicted[:, k], x[:, -1], atol=1e-5, rtol=0)
    assert std.shape == (2, 4, 32, 48) and (std > 0).all()


def test_rollout_feeds_predictions_back_recursively():
    torch.manual_seed(0)
    model = MultiScaleGenerator(MultiScaleConfig(**SMALL, head="pixels")).eval()
    x = frames()
    with torch.no_grad():
        rolled, _ = model.rollout(x, horizon=3)
        first = model(x)[0][-1]
        second = model(torch.cat([x[:, 1:], first.unsqueeze(1)], 1))[0][-1]
        third = model(torch.cat([x[:, 2:], first.unsqueeze(1), second.unsqueeze(1)], 1))[0][-1]
    torch.testing.assert_close(rolled[:, 0], first)
    torch.testing.assert_close(rolled[:, 1], second)
    torch.testing.assert_close(rolled[:, 2], third)


def test_width_multiplier_scales_parameter_count():
    narrow = MultiScaleGenerator(MultiScaleConfig(**SMALL, width_multiplier=1.0))
    wide = MultiScaleGenerator(MultiScaleConfig(**SMALL, width_multiplier=2.0))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(wide) > 1.5 * count(narrow)


def test_size_not_divisible_by_the_coarsest_scale_is_rejected():
    model = MultiScaleGenerator(MultiScaleConfig(**SMALL))
    with pytest.raises(ValueError, match="multiples of 8"):
        model(frames(h=30))


def test_config_round_trips_through_metadata_dict_and_rejects_bad_values():
    config = MultiScaleConfig(**SMALL, head="pixels")
    rebuilt = build_model("multiscale", config.to_dict())
    assert rebuilt.config == config
    with pytest.raises(ValueError, match="head"):
        MultiScaleConfig(head="magic")
    with pytest.raises(ValueError, match="kernel sizes"):
        MultiScaleGenerator(MultiScaleConfig(scales=[{"features": [8, 8], "kernels": [3, 3]}]))
    with pytest.raises(ValueError, match="unknown model family"):
        build_model("nope", {})


def test_predictor_graph_maps_uint8_range_to_unit_range():
    model = MultiScaleGenerator(MultiScaleConfig(**SMALL, head="warp"))
    raw = torch.randint(0, 256, (1, 3, 16, 16, 3)).float()
    predicted, std = PredictorGraph(model, horizon=2)(raw)
    assert predicted.shape == (1, 2, 16, 16, 3) and std.shape == (1, 2, 16, 16)
    torch.testing.assert_close(predicted[:, 0] * 255, raw[:, -1], atol=1e-3, rtol=0)
