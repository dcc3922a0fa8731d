"""video_predictor: predicts a robot camera's next frames (runtime side).

The runtime never imports the offline ``training`` package.
"""

__version__ = "0.1.0"
