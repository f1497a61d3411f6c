"""Session fixtures over the real third-party data, and an S3 server on 127.0.0.1 (helpers live
in tests/helpers.py)."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import MOTO_KEY_ID, MOTO_REGION, MOTO_SECRET, MotoS3, require_shared


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def html_labels() -> list[dict[str, str]]:
    """Rows of ../shared/data/html/labels.csv: filename (relative to data/), label, reason."""
    with require_shared("html", "labels.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def real_page_texts(
    shared_data: Path, html_labels: list[dict[str, str]]
) -> list[tuple[dict[str, str], str]]:
    """(labels.csv row, text extracted with the default extractor) for every real page."""
    import gzip

    from pipeline.extract.extractors import extract_page, get_extractor

    extractor = get_extractor("resiliparse")
    out = []
    for row in html_labels:
        data = (shared_data / row["filename"]).read_bytes()
        if row["filename"].endswith(".gz"):
            data = gzip.decompress(data)
        out.append((row, extract_page(data.decode("utf-8", errors="replace"), extractor).text))
    return out


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    """moto's standalone S3 server on 127.0.0.1 (a free port) holding one empty bucket.

    Beam reaches it through `MotoS3.beam_args` (its S3Options); pyarrow, which the tokenizer
    package uses for manifests and tokenizer files, through the standard AWS environment
    variables set here for the module, as it would find real S3 through the AWS configuration.
    """
    server_module = pytest.importorskip("moto.server", reason="moto[server] (the dev extra)")
    import botocore.loaders
    import botocore.session

    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)  # else one log line per request
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            env = {
                "AWS_ACCESS_KEY_ID": MOTO_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": MOTO_SECRET,
                "AWS_DEFAULT_REGION": MOTO_REGION,
                "AWS_REGION": MOTO_REGION,
                "AWS_ENDPOINT_URL_S3": endpoint,
                # No profile, config file or instance metadata of this machine is consulted.
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            for name, value in env.items():
                mp.setenv(name, value)
            mp.delenv("AWS_PROFILE", raising=False)
            mp.delenv("AWS_SESSION_TOKEN", raising=False)
            # Speed only: Beam builds a new boto3 client for every FileSystems call and each
            # new botocore session reads the S3 service model from disk again (0.1-0.6 s a call
            # here, minutes over a chain of stages); one shared loader makes it ~15 ms. The
            # requests sent are the same.
            loader = botocore.loaders.create_loader()
            mp.setattr(botocore.session, "create_loader", lambda *_args, **_kwargs: loader)
            store = MotoS3(endpoint, "mathcorpus-test")
            store.client.create_bucket(Bucket=store.bucket)
            yield store
    finally:
        server.stop()
        werkzeug.setLevel(level)
