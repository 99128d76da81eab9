"""Option types that refuse a bad value at entry (click's usage error, exit 2), before any work starts.

click's own ranges let ``nan`` and ``inf`` through a FloatRange; ``Seconds`` does not. Paths use
``click.Path`` with the kind they must be (a directory that a layout goes to cannot be a file).
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

import click

from ..redact import mask_url

PORT = click.IntRange(0, 65535)  # 0: a free port the system picks (the server logs which)
AT_LEAST_ONE = click.IntRange(min=1)
FILE_IN = click.Path(exists=True, dir_okay=False)  # read; must be there, and not a directory
FILE_OUT = click.Path(dir_okay=False)  # written; must not be a directory
DIR_OUT = click.Path(file_okay=False)  # created or filled; must not be a file


class Seconds(click.ParamType):
    """A finite number of seconds, at least 0 (``positive``: more than 0)."""

    name = "seconds"

    def __init__(self, positive: bool = False):
        self.positive = positive

    def convert(self, value, param, ctx):
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0 or (self.positive and seconds == 0):
            bound = "more than 0" if self.positive else "0 or more"
            self.fail(f"{value!r} is not a finite number of seconds, {bound}", param, ctx)
        return seconds


class HttpUrl(click.ParamType):
    """An ``http://`` or ``https://`` URL with a host."""

    name = "url"

    def convert(self, value, param, ctx):
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.fail(f"{mask_url(str(value))!r} is not an http(s)://HOST[:PORT] URL", param, ctx)
        try:
            parts.port  # noqa: B018  (raises ValueError for a port out of range)
        except ValueError:
            self.fail(f"{mask_url(str(value))!r} has a port out of range", param, ctx)
        return value


SECONDS = Seconds()
POSITIVE_SECONDS = Seconds(positive=True)
HTTP_URL = HttpUrl()
