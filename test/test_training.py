"""Training side: losses, the generator method's step, the trainer CLI, resume."""

import numpy as np
import pytest
import torch

from training import train
from training.config import PRESET_DIR
from training.data.pool import ClipPool
from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset, render_clip
from training.errors import TrainingError
from training.losses import gradient_difference_loss, laplace_nll, log_mse_loss, lp_loss
from training.methods.generator import GeneratorLossWeights, GeneratorMethod
from video_predictor.core.model_file import load_model_file
from video_predictor.models import build_model

TINY_MULTISCALE = {
    "input_frames": 2,
    "scales": [
        {"features": [8], "kernels": [3, 3]},
        {"features": [8], "kernels": [3, 3]},
        {"features": [4], "kernels": [3, 3]},
        {"features": [4], "kernels": [3, 3]},
    ],
}
# the default preset's family (flow_anchored), tiny
TINY_MODEL = {"input_frames": 2, "consistency_frames": 1, "scales": [{"features": [8], "kernels": [3, 3]}, {"features": [4], "kernels": [3, 3]}]}


def test_gdl_is_zero_for_a_constant_offset_and_positive_for_blur():
    x = torch.rand(1, 3, 16, 16)
    assert gradient_difference_loss(x + 0.1, x).item() == pytest.approx(0.0, abs=1e-6)
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
    assert gradient_difference_loss(blurred, x).item() > 0.01


def test_lp_loss_orders():
    a, b = torch.zeros(4), torch.full((4,), 0.5)
    assert lp_loss(a, b, 1).item() == pytest.approx(0.5)
    assert lp_loss(a, b, 2).item() == pytest.approx(0.25)


def test_log_mse_loss_is_the_mean_of_per_frame_log_errors():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.stack([torch.full((3, 4, 4), 0.01), torch.full((3, 4, 4), 0.1)])
    expected = (np.log(1e-4 + 1e-4) + np.log(1e-2 + 1e-4)) / 2
    assert log_mse_loss(pred, target, 1e-4).item() == pytest.approx(expected, rel=1e-5)
    # the metric's weighting: the nearly exact frame's error costs more per unit than the
    # poor frame's, where the pooled MSE gives the poor frame 10x the gradient
    pred.requires_grad_(True)
    log_mse_loss(pred, target, 1e-4).backward()
    assert pred.grad[0].abs().mean() > pred.grad[1].abs().mean()


def test_a_clip_at_frame_interval_3_is_every_third_frame_of_the_motion():
    clean = dict(height=32, width=32, max_noise_sigma=0.0, static_camera_probability=0.0)
    thinned = render_clip(np.random.default_rng(3), SyntheticConfig(clip_length=4, frame_intervals=(3,), **clean))
    full = render_clip(np.random.default_rng(3), SyntheticConfig(clip_length=10, **clean))
    np.testing.assert_array_equal(thinned, full[::3])
    mixed = [render_clip(np.random.default_rng(i), SyntheticConfig(clip_length=3, frame_intervals=(1, 2), **clean)) for i in range(8)]
    assert all(c.shape == (3, 32, 32, 3) for c in mixed)


def test_shaking_cameras_and_objects_have_no_drift(monkeypatch):
    from training.data import synthetic

    calls = []
    real = synthetic._trajectory

    def recording(rng, drift, length, config, scale=1.0, jitter_median=None, persistence=None):
        calls.append((np.asarray(drift).copy(), jitter_median, persistence))
        return real(rng, drift, length, config, scale, jitter_median, persistence)

    monkeypatch.setattr(synthetic, "_trajectory", recording)
    shaky = SyntheticConfig(height=32, width=32, clip_length=3, static_camera_probability=0.0, shaky_camera_probability=1.0,
                            shaky_object_probability=1.0, shake_median=0.2, shake_persistence=(0.1, 0.2))
    for i in range(4):
        render_clip(np.random.default_rng(i), shaky)
    assert len(calls) > 4 and all(not d.any() and m == 0.2 and p == (0.1, 0.2) for d, m, p in calls)
    calls.clear()
    render_clip(np.random.default_rng(0), SyntheticConfig(height=32, width=32, clip_length=3, static_camera_probability=0.0))
    assert calls and all(d.any() and m is None for d, m, _ in calls)  # the default: everything drifts


def test_laplace_nll_is_minimised_at_the_mean_absolute_error():
    error = torch.full((1, 3, 4, 4), 0.2)
    values = {b: laplace_nll(error, torch.full((1, 1, 4, 4), float(np.log(b)))).item() for b in (0.05, 0.2, 0.8)}
    assert values[0.2] < values[0.05] and values[0.2] < values[0.8]


def test_synthetic_clips_are_deterministic_and_move():
    config = SyntheticConfig(height=32, width=32, clip_length=5)
    a, b = SyntheticVideoDataset(4, config, seed=1), SyntheticVideoDataset(4, config, seed=1)
    assert all(torch.equal(a[i], b[i]) for i in range(4))
    clean = SyntheticConfig(height=32, width=32, clip_length=5, max_noise_sigma=0.0, jpeg_probability=0.0)
    clips = torch.stack([SyntheticVideoDataset(40, clean, seed=2)[i] for i in range(40)])
    assert clips.shape == (40, 5, 32, 32, 3) and clips.dtype == torch.uint8
    moving = (clips[:, 1:].float() - clips[:, :-1].float()).abs().mean(dim=(1, 2, 3, 4)) > 1.0
    assert 0 < moving.sum() < 40  # some clips move, some are (nearly) still


def test_pool_batch_order_resumes_exactly():
    clips = np.random.default_rng(0).integers(0, 255, (10, 3, 4, 4, 3), dtype=np.uint8)
    pool = ClipPool(clips, seed=3)
    stream = pool.batches(batch_size=3)
    first = [next(stream) for _ in range(7)]
    resumed = pool.batches(batch_size=3, start_step=4)
    for expected in first[4:]:
        assert torch.equal(next(resumed), expected)


def test_generator_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    model = build_model("multiscale", TINY_MULTISCALE)
    method = GeneratorMethod(model, input_frames=2, rollout=2, lr=3e-3, weights=GeneratorLossWeights())
    config = SyntheticConfig(height=32, width=32, clip_length=4, static_camera_probability=0.0, camera_speed_median=1.0)
    clip = torch.stack([SyntheticVideoDataset(8, config, seed=5)[i] for i in range(8)])
    losses = [method.train_step(clip)["loss"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])


def test_configured_loss_weights_are_the_ones_used():
    """A port of the paper computed the combined loss with default weights; ours must not."""
    torch.manual_seed(0)
    clip = torch.stack([SyntheticVideoDataset(2, SyntheticConfig(height=32, width=32, clip_length=3), seed=1)[i] for i in range(2)])
    model = build_model("multiscale", TINY_MULTISCALE)
    base = GeneratorMethod(model, 2, 1, 1e-3, GeneratorLossWeights(lp=1.0, gdl=0.0, nll=0.0))
    doubled = GeneratorMethod(model, 2, 1, 1e-3, GeneratorLossWeights(lp=2.0, gdl=0.0, nll=0.0))
    with torch.no_grad():
        assert doubled.generator_losses(clip)[0].item() == pytest.approx(2 * base.generator_losses(clip)[0].item(), rel=1e-5)


def test_the_log_mse_term_is_the_metric_loss_of_every_scale_and_step():
    torch.manual_seed(0)
    clip = torch.stack([SyntheticVideoDataset(2, SyntheticConfig(height=64, width=64, clip_length=6), seed=1)[i] for i in range(2)])
    model = build_model("flow_anchored", TINY_MODEL | {"horizon": 4})
    method = GeneratorMethod(model, 2, 4, 1e-3, GeneratorLossWeights(lp=0.0, log_mse=1.0, gdl=0.0, nll=0.0))
    with torch.no_grad():
        loss, parts = method.generator_losses(clip)
        terms, steps = method.rollout_terms(clip)
    targets = torch.stack([s.target for s in steps], 1).flatten(0, 1)
    expected = 0.0
    for i in range(len(steps[0].predictions)):  # every scale, coarse to fine, all 4 steps
        predicted = torch.stack([s.predictions[i] for s in steps], 1).flatten(0, 1)
        factor = targets.shape[-1] // predicted.shape[-1]
        scaled = torch.nn.functional.avg_pool2d(targets, factor) if factor > 1 else targets
        expected += 4 * log_mse_loss(predicted, scaled, 1e-4).item()
    assert len(steps[0].predictions) == 3
    assert loss.item() == pytest.approx(parts["log_mse"]) and parts["log_mse"] == pytest.approx(expected, rel=1e-5)


def test_trainer_cli_writes_a_loadable_model_and_resumes(tmp_path):
    common = [
        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
        "--set", f"model.config={TINY_MODEL}", "--set", "data.input_frames=2", "--set", "data.height=32",
        "--set", "data.width=32", "--set", "data.synthetic_clips=16", "--set", "data.val_clips=4",
        "--set", "optim.batch_size=4", "--set", "optim.checkpoint_every=2", "--set", "optim.val_every=100",
        "--set", "optim.ema=0.9", "--set", "optim.schedule=cosine",
    ]
    assert train.main(["--steps", "3", *common]) == 0
    metadata, state, _ = load_model_file(tmp_path / "run" / "model.pt")
    assert (metadata.input_frames, metadata.height, metadata.horizon) == (2, 32, 5)
    _, _, checkpoint = load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 3
    assert train.main(["--steps", "5", "--resume", *common]) == 0
    _, _, resumed = load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert resumed["step"] == 5
    assert any(not torch.equal(state[k], resumed["state_dict"][k]) for k in state)


def test_cosine_schedule_decays_to_five_percent():
    config = train.build_config("cpu-small", ["optim.schedule=cosine", "optim.lr=1.0", "optim.steps=100"])
    assert train.learning_rate(config, 0) == pytest.approx(1.0)
    assert train.learning_rate(config, 50) == pytest.approx(0.525)
    assert train.learning_rate(config, 100) == pytest.approx(0.05)
    config.optim.schedule = "wiggly"
    with pytest.raises(ValueError, match="schedule"):
        train.learning_rate(config, 3)


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
def test_every_preset_builds_its_model_and_training_method(preset):
    from training.methods import METHODS

    config = train.build_config(preset)
    model = build_model(config.model.family, config.model.config)
    method = METHODS[config.optim.method].from_config(model, config)
    assert method.model is model and method.optimizers()


def test_a_preset_with_a_base_states_only_what_it_changes(tmp_path):
    from training.config import load_preset

    derived = tmp_path / "derived.yaml"
    derived.write_text("base: cpu-small\npreset: derived\ndata: {synthetic: {jitter_median: 0.5}, real: []}\n")
    base, merged = load_preset("cpu-small"), load_preset(str(derived))
    assert "base" not in merged and merged["preset"] == "derived" and merged["data"]["real"] == []
    assert merged["data"]["synthetic"] == {**base["data"]["synthetic"], "jitter_median": 0.5}  # merged key by key
    assert merged["model"] == base["model"] and merged["optim"] == base["optim"]
    shaky = load_preset("shaky-camera")
    assert shaky["model"]["config"] == {**base["model"]["config"], "global_features": True}


def test_changing_the_family_starts_from_that_familys_default_config():
    config = train.build_config("cpu-small", ["model.family=unet"])
    assert config.model.family == "unet" and config.model.config == {}
    kept = train.build_config("cpu-small", ["model.family=unet", "model.config={features: [4, 8]}"])
    assert kept.model.config == {"features": [4, 8]}
    with pytest.raises(TrainingError, match="model:"):
        train.build_method(train.build_config("cpu-small", ["model.config={no_such_key: 1}"]))


def test_resuming_gives_exactly_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    """A run killed mid-epoch (after its step-2 checkpoint, during step 4) and resumed ends
    where one that never stopped ends: same data order, optimiser, EMA and RNG state."""
    def run(out, *extra):
        assert train.main([
            "--steps", "5", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
            "--set", f"model.config={TINY_MODEL}", "--set", "data.input_frames=2", "--set", "data.height=32",
            "--set", "data.width=32", "--set", "data.patch=16", "--set", "data.synthetic_clips=12", "--set", "data.val_clips=2",
            "--set", "optim.batch_size=4", "--set", "optim.checkpoint_every=2", "--set", "optim.val_every=100",
            "--set", "optim.ema=0.9", "--set", "optim.schedule=cosine", "--set", "optim.threads=1", *extra,
        ]) == 0
        return load_model_file(out / "model.pt")[1]

    straight = run(tmp_path / "straight")

    original = ClipPool.batches

    def killed_after_three_batches(self, batch_size, start_step=0):
        for i, batch in enumerate(original(self, batch_size, start_step)):
            if i == 3:
                raise KeyboardInterrupt  # the kill, mid-epoch, between checkpoints
            yield batch

    monkeypatch.setattr(ClipPool, "batches", killed_after_three_batches)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed")
    monkeypatch.setattr(ClipPool, "batches", original)
    assert load_model_file(tmp_path / "killed" / "checkpoints" / "last.pt")[2]["step"] == 2
    resumed = run(tmp_path / "killed", "--resume")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_init_starts_a_run_from_a_model_files_weights(tmp_path):
    common = [
        "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard", "--set", f"model.config={TINY_MODEL}",
        "--set", "data.input_frames=2", "--set", "data.height=32", "--set", "data.width=32", "--set", "data.synthetic_clips=8",
        "--set", "data.val_clips=2", "--set", "optim.batch_size=4", "--set", "optim.val_every=100", "--set", "optim.threads=1",
    ]
    assert train.main(["--steps", "2", "--out", str(tmp_path / "first"), *common]) == 0
    first = load_model_file(tmp_path / "first" / "model.pt")[1]
    assert train.main(["--steps", "0", "--init", str(tmp_path / "first" / "model.pt"), "--out", str(tmp_path / "second"), *common]) == 0
    second = load_model_file(tmp_path / "second" / "model.pt")[1]
    assert all(torch.equal(first[k], second[k]) for k in first)
    with pytest.raises(SystemExit, match="another network config"):
        train.main(["--steps", "0", "--init", str(tmp_path / "first" / "model.pt"), "--out", str(tmp_path / "third"),
                    *common, "--set", "model.config={input_frames: 2, scales: [{features: [8], kernels: [3, 3]}, {features: [8], kernels: [3, 3]}, {features: [8], kernels: [3, 3]}, {features: [8], kernels: [3, 3]}]}"])
    with pytest.raises(SystemExit, match="exclude each other"):
        train.main(["--init", "x.pt", "--resume", "--out", str(tmp_path / "fourth"), *common])
