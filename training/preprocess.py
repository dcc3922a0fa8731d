"""Decode a dataset once: ``python -m training.preprocess --data PATH --out CACHE.npz``.

Writes the training and validation clip arrays (and a summary, also as CACHE.json)
exactly as ``python -m training.train --data PATH`` would build them with the same
``--config`` and ``--set data.*`` options; ``--data CACHE.npz`` then trains on them
without decoding anything again.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import TrainConfig, build_config
from .data import dataset
from .data.cache import summary_path, write_cache
from .data.formats import CACHE_SUFFIX
from .data.sequence import DataError
from .errors import TrainingError

log = logging.getLogger("training.preprocess")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.preprocess", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a video, bag, frame folder, KITTI raw or BAIR root")
    parser.add_argument("--out", required=True, help=f"the cache file to write ({CACHE_SUFFIX})")
    parser.add_argument("--config", default="cpu-small", help="preset name or YAML file whose data section applies (default: cpu-small)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. data.frame_interval=3 (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command line: a problem (TrainingError, DataError) ends it with its message on stderr and exit status 1."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args.config, [*args.overrides, f"data.source={args.data}"])
    except (FileNotFoundError, ValueError) as error:  # no such preset, unknown keys
        raise SystemExit(str(error)) from None
    try:
        preprocess(Path(args.data), Path(args.out), config)
    except (TrainingError, DataError) as error:
        raise SystemExit(str(error)) from None  # Python prints the message to stderr and exits with 1
    return 0


def preprocess(data: Path, out: Path, config: TrainConfig) -> None:
    """Decode ``data`` into training and validation clips as ``config``'s data section says and
    write them (and their summary) to the clip cache ``out``.

    Raises TrainingError for a cache name --data would not recognise, DataError for unusable data."""
    if out.suffix != CACHE_SUFFIX:
        raise TrainingError(f"--out {out}: the cache must end in {CACHE_SUFFIX}, which is how --data recognises it")
    clip_set = dataset.load_clip_set(data, config.data, dataset.clip_length(config), config.optim.seed)
    write_cache(out, clip_set)
    log.info("wrote %s (%d training, %d validation clips) and %s", out, len(clip_set.train), len(clip_set.val), summary_path(out))


if __name__ == "__main__":
    sys.exit(main())
