"""Empty files on s3:// through Beam's FileSystems (Beam's own bug: apache/beam#21369).

Beam's S3 uploader (`apache_beam.io.aws.s3io.S3Uploader`, 2.77) writes every file as a
multipart upload and uploads a part only when it holds bytes, so closing an empty file completes
an upload with no parts, which S3 (and moto) refuse: `CompleteMultipartUpload ... MalformedXML`.
Our stages avoid empty outputs where they can (`skip_if_empty=True` on text outputs); this module
covers every other empty file (a text output of a stage whose code does not skip it, an empty
file a stage writes itself): the uploader sends one empty part before completing, the S3 SDKs'
own answer for empty streams (the last part of an upload has no minimum size, so one empty part
makes a zero-byte object).

Importing this module installs the fix in that process; `pipeline.core.dead_letters` imports it,
so every stage's driver and every worker that runs one of our DoFns has it. A worker may finish
a file before it ran any of our code: Dataflow imports every BeamPlugin subclass's module at
worker start-up (hence `S3EmptyFiles`), and other runners do so when given
`--beam_plugins=pipeline.core.s3_empty_files`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from apache_beam.utils.plugin import BeamPlugin

_MARK = "_mathcorpus_empty_part"


class S3EmptyFiles(BeamPlugin):
    """Names this module as a Beam plugin, so that Dataflow workers import it at start-up."""


def _finish_with_a_part(finish: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(finish)
    def wrapped(uploader: Any) -> None:
        # Nothing uploaded, nothing buffered and no error: the file is empty. One empty part
        # (part 1) makes the upload completable; an upload that already has parts is unchanged.
        if not uploader.parts and not uploader.buffer and uploader.last_error is None:
            uploader._write_to_s3(b"")
        finish(uploader)

    setattr(wrapped, _MARK, True)
    return wrapped


def install() -> bool:
    """Patch Beam's S3 uploader (once per process); False when Beam has no S3 support here."""
    try:
        from apache_beam.io.aws import s3io
    except ImportError:  # Beam without its aws extra: s3:// is not usable anyway.
        return False
    uploader = getattr(s3io, "S3Uploader", None)
    if uploader is None:
        return False
    if not getattr(uploader.finish, _MARK, False):
        uploader.finish = _finish_with_a_part(uploader.finish)
    return True


install()
