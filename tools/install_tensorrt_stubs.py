"""Install the pinned TensorRT type stubs where only mypy looks, and make them parse.

``tensorrt-stubs==10.13.0.35.1`` (MIT) ships ``tensorrt/__init__.pyi`` and ``tensorrt_bindings/``
as plain folders without ``__init__.py`` or ``py.typed``. Installed into site-packages they would
make ``import tensorrt`` succeed as an empty namespace package (so code probing for TensorRT
would think it is there), and mypy would not use them anyway (no ``py.typed``). So they go into a
folder of their own that mypy reads through ``MYPYPATH`` and Python never imports from; the
wheel is installed without its dependencies (it declares ``tensorrt-cu12-bindings``, the real
TensorRT bindings).

Their ``tensorrt_bindings/tensorrt.pyi`` (generated from the pybind11 module) needs two repairs,
made here on the pinned file only (another one is refused):

* five lines are not valid Python (a parameter named ``in`` on four plugin methods, a parameter
  without default after defaulted ones on ``add_scale_nd``); they stop mypy before it checks
  anything. None of them is an API this project calls.
* the module declares TensorRT's data type ``bool: DataType``, which shadows the builtin in every
  annotation of the file, so each ``-> bool`` (``parse_from_file``, ``set_input_shape``,
  ``execute_async_v3``, ...) would be an invalid type that mypy turns into ``Any``. Annotations
  are rewritten to ``builtins.bool``; ``tensorrt.bool`` stays the data type.

Every stub must then parse.

Usage: python tools/install_tensorrt_stubs.py TARGET_DIR   (after `pip install --no-deps
--target TARGET_DIR -r requirements-typing.txt`)
"""
from __future__ import annotations

import ast
import hashlib
import re
import sys
from pathlib import Path

BINDINGS = "tensorrt_bindings/tensorrt.pyi"
PINNED_SHA256 = "b4cabd654492d265b7d9f96f16494102575c4d17cde7d94e99aae1fcaacf7d92"
# line number -> (regex, replacement); each must match exactly once on its line
FIXES = {
    4748: (r"shift: Weights = None, scale: Weights = None, power: Weights = None, "
           r"channel_axis: int\)",
           "shift: Weights | None, scale: Weights | None, power: Weights | None, "
           "channel_axis: int)"),
    5723: (r"\(self, in: ", "(self, in_: "),
    5944: (r"\(self: IPluginV3, in: ", "(self: IPluginV3, in_: "),
    6001: (r"\(self: IPluginV3, in: ", "(self: IPluginV3, in_: "),
    6137: (r"\(self: IPluginV3, in: ", "(self: IPluginV3, in_: "),
}


class _BuiltinBool(ast.NodeTransformer):
    """``bool`` -> ``builtins.bool`` inside one annotation."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == "bool":
            return ast.copy_location(ast.Attribute(ast.Name("builtins", ast.Load()), "bool",
                                                   ast.Load()), node)
        return node


class _Annotations(ast.NodeTransformer):
    """Applies :class:`_BuiltinBool` to every annotation (arguments, returns, attributes)."""

    def _fix(self, node: ast.expr | None) -> ast.expr | None:
        return None if node is None else _BuiltinBool().visit(node)

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = self._fix(node.annotation)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        node.returns = self._fix(node.returns)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AnnAssign:
        node.annotation = self._fix(node.annotation) or node.annotation
        return node


def builtin_bool_annotations(source: str) -> str:
    tree = _Annotations().visit(ast.parse(source))
    tree.body.insert(1, ast.Import([ast.alias("builtins")]))  # after the __future__ import
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def patch(root: Path) -> None:
    path = root / BINDINGS
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PINNED_SHA256:
        raise SystemExit(f"{path}: sha256 {digest} is not the pinned stubs' "
                         f"({PINNED_SHA256}); update tools/install_tensorrt_stubs.py with them")
    lines = data.decode().split("\n")
    for number, (pattern, replacement) in FIXES.items():
        fixed, count = re.subn(pattern, replacement, lines[number - 1])
        if count != 1:
            raise SystemExit(f"{path}:{number}: expected one match of {pattern!r}")
        lines[number - 1] = fixed
    path.write_text(builtin_bool_annotations("\n".join(lines)))
    for stub in sorted(root.glob("tensorrt*/**/*.pyi")):
        ast.parse(stub.read_text(), str(stub))  # raises SyntaxError where one is left


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    patch(Path(sys.argv[1]))
    print(f"TensorRT stubs ready for mypy in {sys.argv[1]} (MYPYPATH)")
