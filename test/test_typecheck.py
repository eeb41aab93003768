"""mypy on the TensorRT code against the TensorRT 10.13 type stubs: the real code passes, a wrong
call fails (so the check bites), and the stubs, installed where only mypy looks, leave TensorRT
as absent as it is.

The stubs check names, argument and return types of every TensorRT call; they cannot check what
TensorRT does at run time (shapes, profiles, CUDA streams, plan compatibility, FP16 numerics)."""
from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUBS = Path(sys.prefix) / "tensorrt-stubs"  # `make venv` installs them there
BACKEND = ROOT / "lightglue_ros" / "inference" / "tensorrt_backend.py"


def mypy(*args: str) -> subprocess.CompletedProcess:
    assert (STUBS / "tensorrt" / "__init__.pyi").is_file(), \
        f"no TensorRT stubs in {STUBS}: run `make venv` (requirements-typing.txt)"
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={"MYPYPATH": str(STUBS),
                                                       "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_mypy_passes_on_the_tensorrt_code():
    proc = mypy()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found in 2 source files" in proc.stdout


# (what the code says, a wrong version of it, what mypy must say)
WRONG_CALLS = [
    ("builder.create_network(flags)", "builder.create_netwrk(flags)",
     '"Builder" has no attribute "create_netwrk"; maybe "create_network"?'),
    ("ctx.execute_async_v3(stream.cuda_stream)", "ctx.execute_async_v2(stream.cuda_stream)",
     '"IExecutionContext" has no attribute "execute_async_v2"'),  # TensorRT 8, gone in 10
    ("ctx.set_tensor_address(name, tensor.data_ptr())", "ctx.set_tensor_address(name, tensor)",
     'Argument 2 to "set_tensor_address" of "IExecutionContext" has incompatible type '
     '"Tensor"; expected "int"'),
    ("config.set_flag(trt.BuilderFlag.FP16)", "config.set_flag(trt.BuilderFlag.FP61)",
     '"type[BuilderFlag]" has no attribute "FP61"'),
    ("TrtGraph(cached.engine, exported", "TrtGraph(cached, exported",
     'Argument 1 to "TrtGraph" has incompatible type "CachedEngine[ICudaEngine]"; expected '
     '"ICudaEngine"'),
]


@pytest.mark.parametrize("right, wrong, message", WRONG_CALLS, ids=[w[1] for w in WRONG_CALLS])
def test_mypy_fails_on_a_wrong_tensorrt_call(tmp_path, right, wrong, message):
    source = BACKEND.read_text()
    assert source.count(right) == 1, f"{right!r} is not once in {BACKEND.name}"
    shadow = tmp_path / BACKEND.name
    shadow.write_text(source.replace(right, wrong))
    line = source[:source.index(right)].count("\n") + 1
    proc = mypy("--shadow-file", str(BACKEND), str(shadow))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"tensorrt_backend.py:{line}: error: {message}" in proc.stdout, proc.stdout
    others = [e for e in proc.stdout.splitlines() if ": error: " in e and message not in e]
    # what follows from it: the wrong call's value is Any, which this module may not have
    assert all('"Any"' in e and "[misc]" in e for e in others), proc.stdout


def test_the_stubs_leave_tensorrt_absent():
    """Python never sees the stubs: `import tensorrt` fails cleanly, the real bindings the stubs
    declare as a dependency were not installed, and the backend says TensorRT is missing."""
    assert str(STUBS) not in sys.path
    code = ("import importlib.util, sys; names = ('tensorrt', 'tensorrt_bindings', "
            "'tensorrt_stubs'); sys.exit(sum(importlib.util.find_spec(n) is not None "
            "for n in names))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    proc = subprocess.run([sys.executable, "-c", "import tensorrt"], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "No module named 'tensorrt'" in proc.stderr
    for dist in ("tensorrt-cu12-bindings", "tensorrt-stubs"):
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(dist)
    from lightglue_ros.errors import BackendError
    from lightglue_ros.inference.tensorrt_backend import require_tensorrt

    with pytest.raises(BackendError, match="TensorRT is not installed: No module named"):
        require_tensorrt()


def test_the_stub_repair_refuses_other_stubs(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from install_tensorrt_stubs import BINDINGS, patch
    finally:
        sys.path.remove(str(ROOT / "tools"))
    target = tmp_path / BINDINGS
    target.parent.mkdir()
    target.write_text("def f(self, x: int) -> bool: ...\n")
    with pytest.raises(SystemExit, match="is not the pinned stubs"):
        patch(tmp_path)
    installed = (STUBS / BINDINGS).read_text()
    assert "import builtins" in installed and "-> builtins.bool" in installed
    assert "(self, in: " not in installed and "IPluginV3, in: " not in installed
