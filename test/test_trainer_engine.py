"""The trainer's engine (training/engine/): when the Trainer calls its callbacks and with what,
exact resume, the non-finite-loss stop, the default callbacks' files and TensorBoard tags, and
library code raising TrainingError where only the command line exits."""

import logging

import numpy as np
import pytest
import torch

from training import train
from training.config import TrainConfig, build_config
from training.data import dataset
from training.distributed import init_distributed
from training.engine import (
    Callback,
    CheckpointWriter,
    Trainer,
    build_method,
    checkpoint_path,
    default_callbacks,
    load_initial_weights,
)
from training.errors import NonFiniteLossError, TrainingError
from video_predictor.core.model_file import load_model_file

# the default preset's family (flow_anchored), tiny
TINY_MODEL = {"input_frames": 2, "consistency_frames": 1, "scales": [{"features": [8], "kernels": [3, 3]}, {"features": [4], "kernels": [3, 3]}]}


def tiny_config(*overrides: str) -> TrainConfig:
    return build_config("cpu-small", [
        f"model.config={TINY_MODEL}", "data.input_frames=2", "data.height=32", "data.width=32", "data.patch=16",
        "data.real=[]", "optim.batch_size=4", "optim.threads=1", "optim.steps=5", "optim.checkpoint_every=2",
        "optim.val_every=4", "optim.log_every=1", "optim.ema=0.9", "optim.schedule=cosine", *overrides,
    ])


@pytest.fixture(scope="module")
def clips() -> tuple[np.ndarray, np.ndarray]:
    """Smooth moving blobs, so the flow input and the losses are those of real motion."""
    length = dataset.clip_length(tiny_config())
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:32, :32]
    out = np.empty((14, length, 32, 32, 3), np.uint8)
    for i in range(len(out)):
        cy, cx, vy, vx = rng.uniform(8, 24), rng.uniform(8, 24), rng.uniform(-2, 2), rng.uniform(-2, 2)
        for t in range(length):
            blob = np.exp(-((y - cy - vy * t) ** 2 + (x - cx - vx * t) ** 2) / 30.0)
            out[i, t] = (40 + 200 * blob)[..., None].astype(np.uint8)
    return out[:12], out[12:]


class Recorder(Callback):
    """Every hook call, in order, with its step and what the hook received."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_train_start(self, trainer):
        self.calls.append(("start", trainer.start_step, trainer.metadata is not None))

    def on_step_end(self, trainer, step, losses):
        self.calls.append(("step", step, dict(losses)))

    def on_checkpoint(self, trainer, step):
        self.calls.append(("checkpoint", step))

    def on_validation(self, trainer, step, scores):
        self.calls.append(("validation", step, scores))

    def on_train_end(self, trainer, step):
        self.calls.append(("end", step))

    def close(self):
        self.calls.append(("close",))


class Killed(Exception):
    pass


class KillAtCheckpoint(Callback):
    """The process dies right after the checkpoint of ``step`` steps is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint(self, trainer, step):
        if step == self.step:
            raise Killed


def record_losses(method) -> list[dict]:
    """Make ``method`` remember the losses each of its steps returned."""
    returned, original = [], method.train_step

    def train_step(clip):
        returned.append(original(clip))
        return returned[-1]

    method.train_step = train_step
    return returned


def test_callbacks_are_called_at_their_steps_with_the_trainers_values(clips):
    config = tiny_config()
    seen = []

    def validate(model, val_clips, input_frames, horizon, device):
        seen.append((model, val_clips, input_frames, horizon))
        return {"call": len(seen)}

    recorder = Recorder()
    trainer = Trainer.from_config(config, callbacks=[recorder], validate=validate)
    losses = record_losses(trainer.method)
    shipped = trainer.fit(*clips)

    assert len(losses) == 5
    assert recorder.calls == [
        ("start", 0, True),
        ("step", 0, losses[0]), ("step", 1, losses[1]), ("checkpoint", 2),
        ("step", 2, losses[2]), ("step", 3, losses[3]),
        ("checkpoint", 4), ("validation", 4, {"call": 1}),  # the checkpoint first: validation may draw random numbers
        ("step", 4, losses[4]), ("validation", 5, {"call": 2}),  # the last step always validates
        ("end", 5), ("close",),
    ]
    # validation sees the shipped (EMA) network and the held-out clips at the export horizon
    assert shipped is trainer.ema.module and all(model is shipped for model, *_ in seen)
    assert all(v is clips[1] and (n, k) == (2, 5) for _, v, n, k in seen)
    assert trainer.step == 5


def test_resume_continues_at_the_saved_step_with_the_weights_of_an_uninterrupted_run(tmp_path, clips):
    config = tiny_config()
    Trainer.from_config(config, callbacks=[CheckpointWriter(tmp_path / "straight")]).fit(*clips)

    with pytest.raises(Killed):  # killed after the step-2 checkpoint, during the run's third step
        Trainer.from_config(config, callbacks=[CheckpointWriter(tmp_path / "killed"), KillAtCheckpoint(2)]).fit(*clips)
    assert load_model_file(checkpoint_path(tmp_path / "killed"))[2]["step"] == 2

    recorder = Recorder()
    resumed = Trainer.from_config(config, callbacks=[CheckpointWriter(tmp_path / "killed"), recorder])
    resumed.restore(checkpoint_path(tmp_path / "killed"))
    assert resumed.start_step == 2
    resumed.fit(*clips)
    assert recorder.calls[0] == ("start", 2, True)
    assert [call[1] for call in recorder.calls if call[0] == "step"] == [2, 3, 4]
    assert [call[1] for call in recorder.calls if call[0] == "checkpoint"] == [4]

    straight = load_model_file(checkpoint_path(tmp_path / "straight"))[2]
    again = load_model_file(checkpoint_path(tmp_path / "killed"))[2]
    assert straight["step"] == again["step"] == 5
    for key in ("state_dict", "training_state", "ema"):  # weights, optimiser state, EMA
        assert_same(straight[key], again[key], key)
    assert torch.equal(straight["torch_rng"], again["torch_rng"])
    shipped = load_model_file(tmp_path / "straight" / "model.pt")[1]
    assert_same(shipped, load_model_file(tmp_path / "killed" / "model.pt")[1], "model.pt")


def assert_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_a_run_with_no_steps_left_claims_none(tmp_path, clips):
    """--steps 0, or a resume at its own last step, takes no step and must not record one
    (it used to write step start + 1, so a later resume skipped a batch)."""
    recorder = Recorder()
    Trainer.from_config(tiny_config("optim.steps=0"), callbacks=[CheckpointWriter(tmp_path), recorder]).fit(*clips)
    assert recorder.calls == [("start", 0, True), ("end", 0), ("close",)]
    assert load_model_file(checkpoint_path(tmp_path))[2]["step"] == 0

    Trainer.from_config(tiny_config("optim.steps=2"), callbacks=[CheckpointWriter(tmp_path)]).fit(*clips)
    again = Trainer.from_config(tiny_config("optim.steps=2"), callbacks=[CheckpointWriter(tmp_path)])
    again.restore(checkpoint_path(tmp_path))
    again.fit(*clips)
    assert again.step == 2 and load_model_file(checkpoint_path(tmp_path))[2]["step"] == 2


def test_a_non_finite_loss_stops_the_run_naming_the_step(tmp_path, clips):
    config = tiny_config("optim.val_every=100")
    method = build_method(config)
    losses = record_losses(method)
    train_step = method.train_step

    def nan_at_third_step(clip):
        result = train_step(clip)
        return {**result, "loss": float("nan")} if len(losses) == 3 else result

    method.train_step = nan_at_third_step
    recorder = Recorder()
    trainer = Trainer(config, method, callbacks=[CheckpointWriter(tmp_path), recorder])
    with pytest.raises(NonFiniteLossError, match=r"^step 2: loss is not finite \(.*'loss': nan.*\); lower optim\.lr$") as error:
        trainer.fit(*clips)
    assert isinstance(error.value, TrainingError) and error.value.step == 2
    # no step-2 hooks, no end; the callbacks are closed; the last good checkpoint stays
    assert [call[:2] for call in recorder.calls] == [("start", 0), ("step", 0), ("step", 1), ("checkpoint", 2), ("close",)]
    assert load_model_file(checkpoint_path(tmp_path))[2]["step"] == 2
    assert not (tmp_path / "model.pt").exists()


def test_default_callbacks_write_the_model_checkpoint_logs_and_tensorboard(tmp_path, clips, caplog):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    caplog.set_level(logging.INFO, logger="training.train")
    config = tiny_config("optim.steps=3", "optim.val_every=2", "optim.log_every=2", "optim.checkpoint_every=100")
    trainer = Trainer.from_config(config, callbacks=default_callbacks(tmp_path, tensorboard=True), validate=train.validate)
    trainer.fit(*clips)

    metadata, state, checkpoint = load_model_file(checkpoint_path(tmp_path))
    assert checkpoint["step"] == 3 and sorted(checkpoint) == [
        "config", "ema", "format", "metadata", "state_dict", "step", "torch_rng", "training_state"]
    assert (metadata.input_frames, metadata.height, metadata.horizon) == (2, 32, 5)
    shipped = load_model_file(tmp_path / "model.pt")[1]
    assert all(torch.equal(shipped[k], state[k]) for k in state)

    messages = [r.getMessage() for r in caplog.records if r.name == "training.train"]
    assert any(m.startswith("step 0/3 loss ") for m in messages)  # no terminal under pytest: log lines
    assert [m.split(" validation")[0] for m in messages if " validation PSNR model " in m] == ["step 2", "step 3"]
    assert any(m.startswith(f"wrote {tmp_path / 'model.pt'} (model file) after 3 steps") for m in messages)

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [0, 2]  # every optim.log_every steps
    assert [e.step for e in events.Images("val/last_input|truth|prediction")] == [2, 3]
    psnr = EventAccumulator(str(tmp_path / "tensorboard" / "val_psnr_t+5_model"))
    psnr.Reload()
    assert [e.step for e in psnr.Scalars("val/psnr_t+5")] == [2, 3]


def test_library_functions_raise_training_errors(tmp_path, monkeypatch):
    with pytest.raises(TrainingError, match="optim.method must be one of"):
        build_method(tiny_config("optim.method=nope"))
    with pytest.raises(TrainingError, match="model:"):
        build_method(tiny_config("model.config={no_such_key: 1}"))
    with pytest.raises(TrainingError, match="^--init: "):
        load_initial_weights(build_method(tiny_config()).model, tiny_config(), tmp_path / "missing.pt")
    with pytest.raises(TrainingError, match="--resume: no checkpoint at"):
        Trainer.from_config(tiny_config()).restore(checkpoint_path(tmp_path))
    with pytest.raises(TrainingError, match="exclude each other"):
        train.train(tiny_config(), tmp_path, resume=True, init=tmp_path / "model.pt")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(TrainingError, match="optim.device=cuda: CUDA is not available"):
        init_distributed("cuda")


def test_the_command_line_turns_a_training_error_into_its_message_and_status_1(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--resume", "--out", str(tmp_path / "never"), "--no-tensorboard", "--set", f"model.config={TINY_MODEL}",
                    "--set", "data.input_frames=2", "--set", "optim.threads=1"])
    # SystemExit with a message: Python prints it to stderr and exits with status 1
    assert isinstance(exit_info.value.code, str)
    assert exit_info.value.code == f"--resume: no checkpoint at {checkpoint_path(tmp_path / 'never')}"
