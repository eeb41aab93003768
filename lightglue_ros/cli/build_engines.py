"""``lightglue-ros build-engines``: TensorRT engines from the exported ONNX graphs."""
from __future__ import annotations

import argparse

from ..config import EXTRACTORS, Config, add_arguments, from_args, parse_size

ENGINE_PARAMS = ("engine_keypoints", "engine_image_size", "engine_min_image_size",
                 "engine_max_image_size")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-engines", conflict_handler="resolve",
                       help="build TensorRT engines (FP16 by default)",
                       description="Export the ONNX graphs if needed and build one TensorRT "
                                   "engine per graph into <engine_dir>/trt, cached under a key of "
                                   "graph, precision, shapes, TensorRT version and GPU. After an "
                                   "FP16 build, checks on a test image that the FP16 extractor "
                                   "loses no keypoints against PyTorch FP32. The shape ranges "
                                   "are the engine_* parameters: give the node the same values "
                                   "(its params file) and it loads these engines. Needs "
                                   "TensorRT and a CUDA GPU.")
    add_arguments(p, ("features", "inference"))  # our --extractor replaces its own
    p.add_argument("--extractor", dest="extractors", action="append", choices=EXTRACTORS,
                   help="extractor to build for (repeatable; default: the configured one)")
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


def engine_config(args: argparse.Namespace) -> Config:
    """The Config of the engines: the flags, on TensorRT, FP16 and CUDA unless told otherwise."""
    base = from_args(args)
    changes = {}
    if args.precision is None:
        changes["precision"] = "fp16"
    if args.device is None:
        changes["device"] = "cuda"
    return base.replace(backend="tensorrt", **changes).resolved()


def run(args: argparse.Namespace) -> int:
    from ..inference.tensorrt_backend import ShapeRanges, open_engines

    base = engine_config(args)
    failed = False
    for extractor in args.extractors or [base.extractor]:
        cfg = base.replace(extractor=extractor)
        ranges = ShapeRanges.for_config(cfg)  # what TensorRTBackend(cfg) looks up in the node

        def show(entry) -> None:  # noqa: ANN001
            state = "built " if entry.built else "cached"
            print(f"  {state} {entry.model}.{entry.graph:15s} {entry.precision}  "
                  f"key {entry.key}  {entry.path}", flush=True)

        print(f"{extractor}: TensorRT {cfg.precision} engines on {cfg.device}")
        open_engines(cfg, ranges=ranges, progress=show)
        if cfg.precision == "fp16" and not args.no_check:
            report = fp16_check(cfg, _check_images(args, parse_size(cfg.engine_image_size)))
            for i, r in enumerate(report["images"]):
                print(f"  FP16 check image {i}: {r['candidate']} keypoints (FP32: "
                      f"{r['reference']}), {r['lost']} without an FP16 keypoint within 1 px")
            print(f"  FP16 keypoint check: {'ok' if report['ok'] else 'FAILED'}")
            failed |= not report["ok"]
    print("node parameters for these engines: backend: tensorrt, precision: "
          f"{base.precision}, max_keypoints: {base.max_keypoints}, "
          + ", ".join(f"{n}: {getattr(base, n)}" for n in ENGINE_PARAMS))
    return 1 if failed else 0
