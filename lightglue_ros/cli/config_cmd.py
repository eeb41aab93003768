"""``lightglue-ros config``: print the parameters file or the parameter table."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="print the parameters as a ROS 2 YAML file or a table")
    p.add_argument("--yaml", action="store_true", help="ROS 2 parameters file (default)")
    p.add_argument("--markdown", action="store_true", help="markdown table for documentation")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..config import Config

    if args.markdown:
        print("| parameter | default | run-time | description |\n|---|---|---|---|")
        for f in Config.params():
            m = f.metadata
            extra = f" One of: {', '.join(m['choices'])}." if m["choices"] else ""
            print(f"| `{f.name}` | `{f.default!r}` | {'yes' if m['runtime'] else 'no'} | "
                  f"{m['description']}{extra} |")
        return 0
    from ..ros.yaml_config import params_yaml
    print(params_yaml(), end="")
    return 0
