"""Training methods: one class per method over a shared base (OpenSTL style)."""

from .adversarial import AdversarialMethod
from .base import TrainingMethod
from .generator import GeneratorMethod
from .seq2seq import Seq2SeqMethod
from .svg import SVGMethod

# optim.method -> class
METHODS: dict[str, type[TrainingMethod]] = {
    "generator": GeneratorMethod,
    "adversarial": AdversarialMethod,
    "seq2seq": Seq2SeqMethod,
    "svg": SVGMethod,
}

__all__ = ["METHODS", "AdversarialMethod", "GeneratorMethod", "Seq2SeqMethod", "SVGMethod", "TrainingMethod"]
