"""`python -m video_predictor.demo`: the command-line path users type; the code is video_predictor.evaluation.demo."""

from video_predictor.evaluation.demo import main

if __name__ == "__main__":
    raise SystemExit(main())
