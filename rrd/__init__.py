"""The archive: the only package that imports rrdtool."""

from rrd.archive import Archive, ArchiveError, Series, SeriesSpec, Update, WriteResult
from rrd.names import MetricIdError, check_id, make_id
from rrd.reader import ArchiveReader
from rrd.writer import ArchiveWriter

__all__ = [
    "Archive",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveWriter",
    "MetricIdError",
    "Series",
    "SeriesSpec",
    "Update",
    "WriteResult",
    "check_id",
    "make_id",
]
