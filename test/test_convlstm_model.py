"""The seq2seq ConvLSTM family: shapes, decoder past its trained length, uncertainty range,
teacher forcing, the seq2seq training method and the trainer CLI."""

import numpy as np
import pytest
import torch

from training import train
from training.config import build_config
from training.data.synthetic import SyntheticConfig, SyntheticVideoDataset
from training.methods import METHODS
from training.methods.generator import GeneratorLossWeights, GeneratorMethod
from training.methods.seq2seq import Seq2SeqMethod
from video_predictor.backends import create_predictor
from video_predictor.core.model_file import load_model_file
from video_predictor.models import build_model
from video_predictor.models.convlstm import ConvLSTMConfig, ConvLSTMSeq2Seq

TINY = {"input_frames": 3, "stem": [4], "hidden": [8, 8]}


def frames(batch=2, n=3, h=16, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 3, h, w, generator=g) * 2 - 1


def perturbed(config: dict, seed: int = 0) -> ConvLSTMSeq2Seq:
    """Random non-identity weights, so outputs depend on everything they should."""
    torch.manual_seed(seed)
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(**config))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def clips(n=8, length=6, seed=5):
    config = SyntheticConfig(height=32, width=32, clip_length=length, static_camera_probability=0.0, camera_speed_median=1.0, photo_probability=0.0)
    return torch.stack([SyntheticVideoDataset(n, config, seed=seed)[i] for i in range(n)])


def test_sequence_and_one_step_shapes():
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(**TINY))
    seq = model.sequence(frames(), horizon=4)
    assert seq.frames.shape == (2, 4, 3, 16, 24) and seq.log_scale.shape == (2, 4, 1, 16, 24)
    assert seq.frames.abs().max() <= 1.0
    torch.testing.assert_close(model(frames(), 4).frames, seq.frames)  # forward with a horizon = sequence
    step = model(frames())
    assert len(step.predictions) == 1 and step.predictions[0].shape == (2, 3, 16, 24)
    assert step.log_scale.shape == (2, 1, 16, 24)


def test_untrained_residual_model_copies_the_last_frame_past_its_trained_length():
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(**TINY))
    x = frames()
    predicted, std = model.rollout(x, horizon=7)
    assert predicted.shape == (2, 7, 3, 16, 24) and std.shape == (2, 7, 16, 24)
    torch.testing.assert_close(predicted, x[:, -1:].expand_as(predicted), atol=1e-6, rtol=0)
    assert (std > 0).all() and (std <= 1).all()


def test_rollout_is_the_free_running_decoder_and_longer_horizons_extend_it():
    model = perturbed(TINY)
    x = frames()
    with torch.no_grad():
        short, _ = model.rollout(x, 2)
        long, std = model.rollout(x, 6)
        first = model(x).predictions[0]
    torch.testing.assert_close(long[:, :2], short)
    torch.testing.assert_close(long[:, 0], first)
    assert not torch.allclose(long[:, 4], long[:, 5])  # the decoder keeps producing new frames
    assert (std >= 0).all() and (std <= 1).all()


def test_std_is_the_laplace_std_of_the_head_in_unit_intensity_range():
    model = perturbed({**TINY, "residual": False})
    with torch.no_grad():
        model.head.weight[-1].zero_()
        model.head.bias[-1].fill_(float(np.log(0.1)))  # b = 0.1 in [-1, 1] units = 0.05 in [0, 1]
        _, std = model.rollout(frames(), 3)
    torch.testing.assert_close(std, torch.full_like(std, 0.05 * np.sqrt(2)))  # Laplace std = sqrt(2) b


def test_teacher_forcing_feeds_the_true_frames_to_the_decoder():
    model = perturbed(TINY)
    x = frames()
    truth = frames(n=3, seed=1)
    other = truth.clone()
    other[:, 1:] = frames(n=2, seed=2)  # differs after the first true frame
    with torch.no_grad():
        free = model.sequence(x, 3).frames
        forced = model.sequence(x, 3, targets=truth, teacher_forcing=1.0).frames
        forced_other = model.sequence(x, 3, targets=other, teacher_forcing=1.0).frames
        ignored = model.sequence(x, 3, targets=truth, teacher_forcing=0.0).frames
    torch.testing.assert_close(forced[:, 0], free[:, 0])  # step 0 only sees observed frames
    assert (forced[:, 1] - free[:, 1]).abs().max() > 1e-3  # on/off differ
    torch.testing.assert_close(forced_other[:, 1], forced[:, 1])  # step 1 saw truth[:, 0] only
    assert (forced_other[:, 2] - forced[:, 2]).abs().max() > 1e-3
    torch.testing.assert_close(ignored, free)


def test_partial_teacher_forcing_mixes_per_sample():
    model = perturbed(TINY)
    x, truth = frames(batch=16), frames(batch=16, seed=1)
    torch.manual_seed(3)
    with torch.no_grad():
        free = model.sequence(x, 2).frames[:, 1]
        forced = model.sequence(x, 2, targets=truth, teacher_forcing=1.0).frames[:, 1]
        mixed = model.sequence(x, 2, targets=truth, teacher_forcing=0.5).frames[:, 1]
    as_free = [torch.allclose(m, f) for m, f in zip(mixed, free)]
    as_forced = [torch.allclose(m, f) for m, f in zip(mixed, forced)]
    assert all(a != b for a, b in zip(as_free, as_forced))  # every sample is one or the other
    assert 0 < sum(as_forced) < 16


def test_bad_inputs_and_configs_are_rejected():
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(**TINY))
    with pytest.raises(ValueError, match="multiples of 2"):
        model.sequence(frames(h=15), 1)
    with pytest.raises(ValueError, match="horizon"):
        model.sequence(frames(), 0)
    with pytest.raises(ValueError, match="teacher forcing needs"):
        model.sequence(frames(), 3, targets=frames(n=1), teacher_forcing=1.0)
    with pytest.raises(ValueError, match="kernel"):
        ConvLSTMConfig(kernel=4)
    with pytest.raises(ValueError, match="unknown keys scales"):
        ConvLSTMConfig.from_dict({"scales": []})
    config = ConvLSTMConfig(**TINY, residual=False)
    assert build_model("convlstm", config.to_dict()).config == config


def test_width_multiplier_scales_the_layers():
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(**TINY, width_multiplier=2.0))
    assert model.encoder.cells[0].hidden_channels == 16 and model.stem[0][0].out_channels == 8


def test_seq2seq_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(input_frames=2, stem=[4], hidden=[8]))
    method = Seq2SeqMethod(model, input_frames=2, rollout=2, lr=5e-3, weights=GeneratorLossWeights(p=2, gdl=0.1, nll=0.0))
    batch = clips(n=4, length=4)
    losses = [method.train_step(batch)["loss"] for _ in range(15)]
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])


def test_teacher_forcing_on_and_off_give_different_objectives():
    batch = clips(n=4, length=5)
    model = perturbed({"input_frames": 2, "stem": [4], "hidden": [8]})
    weights = GeneratorLossWeights(p=2, gdl=1.0, nll=0.05)
    free = Seq2SeqMethod(model, 2, 3, 1e-3, weights, teacher_forcing=0.0)
    forced = Seq2SeqMethod(model, 2, 3, 1e-3, weights, teacher_forcing=1.0)
    with torch.no_grad():
        free_terms, _ = free.rollout_terms(batch)
        forced_terms, _ = forced.rollout_terms(batch)
        one_step_free, _ = Seq2SeqMethod(model, 2, 1, 1e-3, weights).rollout_terms(batch)
        one_step_forced, _ = Seq2SeqMethod(model, 2, 1, 1e-3, weights, teacher_forcing=1.0).rollout_terms(batch)
    assert abs(free_terms["lp"].item() - forced_terms["lp"].item()) > 1e-4
    assert one_step_free["lp"].item() == pytest.approx(one_step_forced["lp"].item())  # nothing to force in one step


def test_seq2seq_method_from_config_and_its_refusals():
    config = build_config("convlstm", ["optim.loss={lp: 2.0}"])
    assert METHODS[config.optim.method] is Seq2SeqMethod
    model = build_model(config.model.family, config.model.config)
    method = Seq2SeqMethod.from_config(model, config)
    assert (method.rollout, method.input_frames, method.weights.lp, method.teacher_forcing) == (4, 4, 2.0, 0.0)
    config.optim.teacher_forcing = 0.5  # OptimSection.teacher_forcing
    assert Seq2SeqMethod.from_config(model, config).teacher_forcing == 0.5
    with pytest.raises(ValueError, match="teacher forcing ratio"):
        Seq2SeqMethod(model, 4, 4, 1e-3, GeneratorLossWeights(), teacher_forcing=1.5)
    with pytest.raises(ValueError, match="sequence model"):
        Seq2SeqMethod(build_model("unet", {}), 4, 4, 1e-3, GeneratorLossWeights())


def test_generator_method_trains_it_one_step_at_a_time():
    torch.manual_seed(0)
    model = ConvLSTMSeq2Seq(ConvLSTMConfig(input_frames=2, stem=[4], hidden=[8]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = GeneratorMethod(model, 2, 2, 1e-3, GeneratorLossWeights()).train_step(clips(n=2, length=4))
    assert np.isfinite(losses["loss"])
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_trainer_cli_preset_trains_checkpoints_resumes_and_the_node_backend_loads_it(tmp_path):
    common = [
        "--config", "convlstm", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-tensorboard",
        "--set", "model.config={input_frames: 2, stem: [4], hidden: [8]}", "--set", "data.input_frames=2",
        "--set", "data.rollout=2", "--set", "data.height=32", "--set", "data.width=32", "--set", "data.synthetic_clips=8",
        "--set", "data.val_clips=2", "--set", "data.synthetic={photo_probability: 0.0}", "--set", "optim.batch_size=2",
        "--set", "optim.checkpoint_every=2", "--set", "optim.val_every=100", "--set", "optim.threads=1", "--set", "export_horizon=3",
    ]
    assert train.main(["--steps", "2", *common]) == 0
    metadata, state, _ = load_model_file(tmp_path / "run" / "model.pt")
    assert (metadata.family, metadata.input_frames, metadata.horizon, metadata.uncertainty) == ("convlstm", 2, 3, "heteroscedastic")
    assert train.main(["--steps", "3", "--resume", *common]) == 0
    _, _, resumed = load_model_file(tmp_path / "run" / "checkpoints" / "last.pt")
    assert resumed["step"] == 3
    assert any(not torch.equal(state[k], resumed["state_dict"][k]) for k in state)
    predictor, _ = create_predictor(str(tmp_path / "run" / "model.pt"), backend="torch")
    prediction = predictor.predict(np.zeros((1, 2, 32, 32, 3), np.uint8))
    assert prediction.frames.shape == (1, 3, 32, 32, 3) and prediction.std.shape == (1, 3, 32, 32)
