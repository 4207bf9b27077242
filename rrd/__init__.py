"""The archive: the only package that imports rrdtool."""

from rrd.archive import Archive, ArchiveError, Series, SeriesSpec, Update, WriteResult
from rrd.names import MetricIdError, check_id, make_id

__all__ = [
    "Archive",
    "ArchiveError",
    "MetricIdError",
    "Series",
    "SeriesSpec",
    "Update",
    "WriteResult",
    "check_id",
    "make_id",
]
