"""Collect the `track --json` runs of the fr2/desk RANSAC-threshold sweep (`make figures-accuracy`)
into the one JSON object BENCHMARKS.md quotes: one entry per ``<keypoints>_<threshold>.json``."""
import json
import sys
from pathlib import Path

KEYS = ("rel_rot_err_median_deg", "mean_layers", "lost_frames", "mean_latency_ms")


def main(folder: str) -> None:
    runs = {path.stem: {k: json.loads(path.read_text())[k] for k in KEYS}
            for path in sorted(Path(folder).glob("*.json"))}
    print(json.dumps({"command": "lightglue-ros track ../shared/data/tum_fr2_desk --preset fr2 "
                      "--extractor xfeat --max-keypoints K [--ransac-threshold-px T] --json "
                      "(key K_T; T default: -1 = 0.75 px for xfeat)", "runs": runs}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
