"""Publishes with modelkit's own CLI operations (`modelkit assets new` / `update`), answering its prompt with "y".

argv: new|update ASSET_PATH ASSET_SPEC [--bump-major]; env as for modelkit_fetch.py.
Output: {"version": the version modelkit pushed}
"""
import contextlib
import json
import os
import sys

import click

from modelkit.assets import cli


def main():
    op, asset_path, asset_spec = sys.argv[1:4]
    bump_major = "--bump-major" in sys.argv[4:]
    prefix = os.environ.get("MODELKIT_STORAGE_PREFIX")
    click.prompt = lambda *args, **kwargs: "y"  # the CLI asks for confirmation
    with contextlib.redirect_stdout(sys.stderr):
        if op == "new":
            version = cli.new_(asset_path, asset_spec, prefix, False)
        elif op == "update":
            version = cli.update_(asset_path, asset_spec, prefix, bump_major, False)
        else:
            raise SystemExit(f"unknown operation {op}")
    json.dump({"version": version}, sys.stdout)


if __name__ == "__main__":
    main()
