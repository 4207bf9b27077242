"""rexmon's own metrics for Prometheus: every metric object lives here, the owners of events update them.

The collector (``[scheduler] metrics_listen``) and ``rexmon web`` serve them at ``/metrics`` in the
Prometheus text format (prometheus_client's default registry, which also carries the process and
platform collectors). Per-slurper series are Summaries (a count and a sum, two series per slurper) rather
than Histograms, so 10,000 slurpers stay 20,000 series and not 200,000.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, Summary, generate_latest

from rexmon import __version__

_SECONDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BUILD = Info("rexmon_build", "The running rexmon's version.")
BUILD.info({"version": __version__})

SLURPER_RUNS = Counter("rexmon_slurper_runs", "Slurper runs, successful or not.", ["slurper"])
SLURPER_FAILURES = Counter("rexmon_slurper_failures", "Slurper runs that ended in an error.", ["slurper"])
SLURPER_DURATION = Summary("rexmon_slurper_duration_seconds", "How long slurper runs took.", ["slurper"])
SCHEDULER_LAG = Histogram(
    "rexmon_scheduler_lag_seconds", "Delay between a run's scheduled time and its start.", buckets=_SECONDS
)
WRITER_QUEUE = Gauge("rexmon_writer_queue_depth", "Slurper results waiting for the writer.")
ARCHIVE_WRITE = Histogram(
    "rexmon_archive_write_seconds", "Time to write one batch to the archive.", buckets=_SECONDS
)
VALUES_WRITTEN = Counter("rexmon_archive_values_written", "Values written to the archive.")
VALUES_SKIPPED = Counter(
    "rexmon_archive_values_skipped", "Values not written: older than the file's last update."
)
ARCHIVE_ERRORS = Counter("rexmon_archive_errors", "Metrics whose values the archive refused in a batch.")
VALUES_HELD = Gauge(
    "rexmon_archive_values_held", "Values waiting in memory while rrd_dir or the journal cannot be written."
)
VALUES_REFUSED = Counter(
    "rexmon_archive_values_refused", "Values refused: the values waiting in memory reached their bound."
)
JOURNAL_BYTES = Gauge("rexmon_journal_bytes", "Size of the update journal not yet flushed by rrdcached.")
ALARM_ROUND = Histogram(
    "rexmon_alarm_round_seconds",
    "Time of one alarm step: evaluation of a round's values, tick (staleness, delivery), close.",
    ["step"],
    buckets=_SECONDS,
)
OUTBOX_BACKLOG = Gauge("rexmon_outbox_backlog", "Notifications due in the outbox and not yet delivered.")
NOTIFY_SENT = Counter("rexmon_notifications_sent", "Notifications delivered, by target.", ["target"])
NOTIFY_FAILED = Counter(
    "rexmon_notifications_failed", "Notification attempts that failed, by target.", ["target"]
)
WRITER_ROUNDS = Counter("rexmon_writer_rounds", "Completed writer rounds (each records a heartbeat).")
HEARTBEAT_AGE = Gauge(
    "rexmon_collector_heartbeat_age_seconds", "Age of each collector's heartbeat, as the watchdog saw it.",
    ["collector"],
)  # fmt: skip


def exposition() -> tuple[bytes, str]:
    """The current metrics in the Prometheus text format, and their Content-Type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def record_run(slurper: str, duration: float, failed: bool, lag: float | None) -> None:
    """Count one slurper run (called by the runner for every run)."""
    SLURPER_RUNS.labels(slurper).inc()
    SLURPER_DURATION.labels(slurper).observe(duration)
    if failed:
        SLURPER_FAILURES.labels(slurper).inc()
    if lag is not None:
        SCHEDULER_LAG.observe(lag)


def record_write(seconds: float, written: int, skipped: int, errors: int) -> None:
    """Count one archive batch (called by the archive after each write)."""
    ARCHIVE_WRITE.observe(seconds)
    VALUES_WRITTEN.inc(written)
    VALUES_SKIPPED.inc(skipped)
    ARCHIVE_ERRORS.inc(errors)


def record_backlog(held: int, refused: int) -> None:
    """The archive's values held in memory after a batch, and those it refused (rrd.WriteResult)."""
    VALUES_HELD.set(held)
    VALUES_REFUSED.inc(refused)


class NotifyCounts:
    """The deliverer's backlog and outcomes by target (``alarms.notify.DeliveryCounts``) as metrics."""

    def backlog(self, due: int) -> None:
        OUTBOX_BACKLOG.set(due)

    def sent(self, target: str) -> None:
        NOTIFY_SENT.labels(target).inc()

    def failed(self, target: str) -> None:
        NOTIFY_FAILED.labels(target).inc()
