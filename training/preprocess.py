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

from .config import build_config
from .data import dataset
from .data.cache import summary_path, write_cache
from .data.formats import CACHE_SUFFIX
from .data.sequence import DataError

log = logging.getLogger("training.preprocess")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.preprocess", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a video, bag, frame folder, KITTI raw or BAIR root")
    parser.add_argument("--out", required=True, help=f"the cache file to write ({CACHE_SUFFIX})")
    parser.add_argument("--config", default="cpu-small", help="preset name or YAML file whose data section applies (default: cpu-small)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. data.frame_interval=3 (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    if out.suffix != CACHE_SUFFIX:
        raise SystemExit(f"--out {out}: the cache must end in {CACHE_SUFFIX}, which is how --data recognises it")
    config = build_config(args.config, [*args.overrides, f"data.source={args.data}"])
    try:
        clip_set = dataset.load_clip_set(Path(args.data), config.data, dataset.clip_length(config), config.optim.seed)
    except DataError as error:
        raise SystemExit(str(error)) from None
    write_cache(out, clip_set)
    log.info("wrote %s (%d training, %d validation clips) and %s", out, len(clip_set.train), len(clip_set.val), summary_path(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
