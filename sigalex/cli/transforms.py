"""``sigalex transforms``: the transforms and their parameters."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("transforms", help="list the transforms and their parameters")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..transforms import available_transforms, get_transform, transform_parameters

    for name in available_transforms():
        doc = (get_transform(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:8s} {doc}")
        print(f"{'':8s} parameters: {', '.join(transform_parameters(name))}")
    return 0
