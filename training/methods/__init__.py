"""Training methods: one class per method over a shared base (OpenSTL style)."""

from training.methods.adversarial import AdversarialMethod
from training.methods.base import TrainingMethod
from training.methods.generator import GeneratorMethod
from training.methods.seq2seq import Seq2SeqMethod
from training.methods.svg import SVGMethod

# optim.method -> class
METHODS: dict[str, type[TrainingMethod]] = {
    "generator": GeneratorMethod,
    "adversarial": AdversarialMethod,
    "seq2seq": Seq2SeqMethod,
    "svg": SVGMethod,
}

__all__ = ["METHODS", "AdversarialMethod", "GeneratorMethod", "Seq2SeqMethod", "SVGMethod", "TrainingMethod"]
