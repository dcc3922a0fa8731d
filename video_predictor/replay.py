"""`python -m video_predictor.replay`: the command-line path users type; the code is video_predictor.ros.replay."""

from video_predictor.ros.replay import main

if __name__ == "__main__":
    raise SystemExit(main())
