"""gzip for the site's text answers (pages, partial HTML, JSON, CSV, SVG) when the browser accepts it.

The overview of 10,000 metrics is mostly repeated markup; compressed it is a tenth of its size on the
wire. Images (PNG) and streamed or file answers are left alone.
"""

from __future__ import annotations

import gzip

from flask import Response, request

#: smaller answers are not worth the header and the CPU
MIN_BYTES = 1024
#: level 5: nearly level 9's size at a third of its time
LEVEL = 5
_TYPES = ("text/", "application/json", "image/svg+xml", "application/javascript")


def compress(resp: Response) -> Response:
    """``Content-Encoding: gzip`` for a compressible answer to a client that says it accepts gzip."""
    if (
        resp.direct_passthrough
        or resp.status_code < 200
        or resp.status_code in (204, 304)
        or "Content-Encoding" in resp.headers
        or not (resp.mimetype or "").startswith(_TYPES)
        or "gzip" not in request.headers.get("Accept-Encoding", "").lower()
    ):
        return resp
    data = resp.get_data()
    if len(data) < MIN_BYTES:
        return resp
    resp.set_data(gzip.compress(data, compresslevel=LEVEL, mtime=0))
    resp.headers["Content-Encoding"] = "gzip"
    resp.vary.add("Accept-Encoding")
    return resp
