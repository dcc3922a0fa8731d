"""`python -m video_predictor.evaluate`: the command-line path users type; the code is video_predictor.evaluation.offline."""

from video_predictor.evaluation.offline import main

if __name__ == "__main__":
    raise SystemExit(main())
