"""``lightglue-ros build-engines``: TensorRT engines from the exported ONNX graphs."""
from __future__ import annotations

import argparse

from ..config import EXTRACTORS, add_arguments, from_args


def _triple(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3 or not 1 <= parts[0] <= parts[1] <= parts[2]:
        raise argparse.ArgumentTypeError(f"expected MIN,OPT,MAX with 1 <= MIN <= OPT <= MAX, "
                                         f"got {text!r}")
    return parts[0], parts[1], parts[2]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engines", conflict_handler="resolve",
                       help="build TensorRT engines (FP16 by default)",
                       description="Export the ONNX graphs if needed and build one TensorRT "
                                   "engine per graph into <engine_dir>/trt, cached under a key of "
                                   "graph, precision, shapes, TensorRT version and GPU. After an "
                                   "FP16 build, checks on a test image that the FP16 extractor "
                                   "loses no keypoints against PyTorch FP32. Needs TensorRT and "
                                   "a CUDA GPU.")
    add_arguments(p, ("features", "inference"))  # our --extractor replaces its own
    p.add_argument("--extractor", dest="extractors", action="append", choices=EXTRACTORS,
                   help="extractor to build for (repeatable; default: the configured one)")
    p.add_argument("--keypoints", type=_triple, default=(1, 1024, 4096),
                   help="LightGlue keypoint-count profile MIN,OPT,MAX (default 1,1024,4096; the "
                        "max is raised to max_keypoints)")
    p.add_argument("--image-size", type=_size, default=(640, 480),
                   help="optimal image size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--max-image-size", type=_size, default=(1920, 1088),
                   help="largest image size WIDTHxHEIGHT (default 1920x1088)")
    p.add_argument("--min-image-size", type=_size, default=(32, 32),
                   help="smallest image size WIDTHxHEIGHT (default 32x32)")
    p.add_argument("--check-image", action="append", default=[],
                   help="image for the FP16 keypoint check (repeatable; default: a synthetic "
                        "frame of the optimal size)")
    p.add_argument("--no-check", action="store_true", help="skip the FP16 keypoint check")
    p.set_defaults(run=run)


def _check_images(args: argparse.Namespace, size: tuple[int, int]) -> list:
    if args.check_image:
        from ..images import load_image

        return [load_image(path) for path in args.check_image]
    from ..synthetic.sequence import make_sequence

    return [make_sequence(num_frames=2, width=size[0], height=size[1]).frame(0).rgb]


def fp16_check(cfg, images: list) -> dict:
    """The FP16 engines' extractor against PyTorch FP32 on the same GPU."""
    from ..images import to_tensor
    from ..inference.precision import keypoint_check
    from ..inference.tensorrt_backend import TensorRTBackend
    from ..inference.torch_backend import TorchBackend

    candidate = TensorRTBackend(cfg, build=False)
    reference = TorchBackend(cfg.replace(backend="torch", precision="fp32"))
    tensors = [to_tensor(img, candidate.input_channels, cfg.resize)[0] for img in images]
    return keypoint_check(candidate.extract, reference.extract, tensors)


def run(args: argparse.Namespace) -> int:
    from ..errors import BackendError
    from ..inference.tensorrt_backend import ShapeRanges, open_engines

    base = from_args(args)
    changes = {}
    if args.precision is None:
        changes["precision"] = "fp16"
    if args.device is None:
        changes["device"] = "cuda"
    base = base.replace(backend="tensorrt", **changes).resolved()
    (w_min, h_min), (w_opt, h_opt), (w_max, h_max) = (args.min_image_size, args.image_size,
                                                     args.max_image_size)
    if not (w_min <= w_opt <= w_max and h_min <= h_opt <= h_max):
        raise BackendError("image sizes must satisfy min <= optimal <= max in both dimensions")
    failed = False
    for extractor in args.extractors or [base.extractor]:
        cfg = base.replace(extractor=extractor)
        ranges = ShapeRanges.for_config(cfg, keypoints=args.keypoints,
                                        image_height=(h_min, h_opt, h_max),
                                        image_width=(w_min, w_opt, w_max))

        def show(entry) -> None:  # noqa: ANN001
            state = "built " if entry.built else "cached"
            print(f"  {state} {entry.model}.{entry.graph:15s} {entry.precision}  "
                  f"key {entry.key}  {entry.path}", flush=True)

        print(f"{extractor}: TensorRT {cfg.precision} engines on {cfg.device}")
        open_engines(cfg, ranges=ranges, progress=show)
        if cfg.precision == "fp16" and not args.no_check:
            report = fp16_check(cfg, _check_images(args, (w_opt, h_opt)))
            for i, r in enumerate(report["images"]):
                print(f"  FP16 check image {i}: {r['candidate']} keypoints (FP32: "
                      f"{r['reference']}), {r['lost']} without an FP16 keypoint within 1 px")
            print(f"  FP16 keypoint check: {'ok' if report['ok'] else 'FAILED'}")
            failed |= not report["ok"]
    return 1 if failed else 0
