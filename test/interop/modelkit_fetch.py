"""Fetches asset specs with modelkit's own AssetsManager (S3 provider) and prints JSON on stdout.

argv: ASSETS_DIR SPEC... ; env: MODELKIT_STORAGE_PROVIDER=s3, MODELKIT_STORAGE_BUCKET, MODELKIT_STORAGE_PREFIX,
S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
Output: {"fetched": [{"spec", "version", "path", "from_cache", "meta_push_date"}], "remote_versions": {name: [...]}}
"""
import contextlib
import json
import sys

from modelkit.assets.manager import AssetsManager
from modelkit.assets.remote import StorageProvider
from modelkit.assets.settings import AssetSpec


def main():
    assets_dir, specs = sys.argv[1], sys.argv[2:]
    out = {"fetched": [], "remote_versions": {}}
    with contextlib.redirect_stdout(sys.stderr):  # modelkit logs must not mix with the JSON
        provider = StorageProvider()  # provider, bucket, prefix, endpoint and keys from the environment
        manager = AssetsManager(assets_dir=assets_dir, storage_provider=provider)
        for spec in specs:
            info = manager.fetch_asset(spec, return_info=True)
            meta = info.get("meta") or {}
            push_date = meta.get("push_date")
            out["fetched"].append({
                "spec": spec,
                "version": info["version"],
                "path": info["path"],
                "from_cache": info["from_cache"],
                "meta_push_date": push_date.isoformat() if push_date is not None else None,
                "meta_is_directory": meta.get("is_directory"),
            })
        for spec in specs:
            name = AssetSpec.from_string(spec).name
            out["remote_versions"][name] = provider.get_versions_info(name)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
