"""Pushes a file or folder as a new modelkit asset with modelkit's own StorageProvider (what `modelkit assets new`
calls after its prompts; the CLI itself asks for confirmation, twice for folders of more than 50 files).

argv: ASSET_PATH NAME ; env: MODELKIT_STORAGE_PROVIDER=s3, MODELKIT_STORAGE_BUCKET, MODELKIT_STORAGE_PREFIX,
S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION.
"""
import contextlib
import sys

from modelkit.assets.remote import StorageProvider

INITIAL_VERSION = "0.0"  # modelkit's first major_minor version


def main():
    asset_path, name = sys.argv[1:3]
    with contextlib.redirect_stdout(sys.stderr):
        StorageProvider().new(asset_path, name, INITIAL_VERSION)


if __name__ == "__main__":
    main()
