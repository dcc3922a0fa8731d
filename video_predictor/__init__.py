"""video_predictor: predicts a robot camera's next frames (runtime side).

The runtime never imports the offline ``training`` package.
"""

__version__ = "0.1.0"

__all__ = ["VideoPredictor", "FramePrediction"]


def __getattr__(name: str):
    """``from video_predictor import VideoPredictor`` (video_predictor.api), imported on
    first use: importing the package stays cheap (the node's entry point relies on it)."""
    if name in __all__:
        from video_predictor import api

        return getattr(api, name)
    raise AttributeError(f"module 'video_predictor' has no attribute {name!r}")
