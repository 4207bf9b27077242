"""A checkpointing slurper for the reliability tests: reads an append-only ledger of "epoch value" lines.

It is a real plugin, registered through the ``rexmon.slurpers`` entry-point group (the tests write a
``.dist-info`` for it), so ``rexmon run`` loads it exactly as it loads a third-party slurper. Its
checkpoint is the epoch of the last line handed over, so a restart must resume without gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slurpers.api import CollectContext, MetricSpec, PayloadError, Reading, Slurper, settings

#: at most this many lines per run, so catching up after a restart takes several runs
BATCH = 400


@settings
class LedgerSettings:
    #: path of the ledger file
    source: str


def value_at(epoch: int) -> float:
    """The value the ledger holds for an epoch (tests recompute it to check the archive)."""
    return float(epoch % 997) + 0.5


class LedgerSlurper(Slurper[LedgerSettings]):
    def metrics(self) -> Sequence[MetricSpec]:
        return [MetricSpec("ledger", "GAUGE", unit="units")]

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        through = int(ctx.state.get("through", 0))
        out: list[Reading] = []
        try:
            lines = Path(self.settings.source).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for n, line in enumerate(lines, 1):
            parts = line.split()
            if len(parts) != 2:
                continue  # the writer may be half-way through the last line
            try:
                epoch, value = int(parts[0]), float(parts[1])
            except ValueError as exc:
                raise PayloadError(f"ledger line {n}: {line!r}: {exc}") from None
            if epoch > through:
                out.append(Reading("ledger", value, epoch))
                if len(out) >= BATCH:
                    break
        if out:
            ctx.new_state = {"through": int(out[-1].time or 0)}
        return out


@settings
class SteadySettings:
    #: how many metrics each run reads
    metrics: int = 3


class SteadySlurper(Slurper[SteadySettings]):
    """A cheap slurper for the soak test: ``metrics`` readings stamped 'now', every run."""

    def metrics(self) -> Sequence[MetricSpec]:
        return [MetricSpec("m*", "GAUGE")]

    def collect(self, ctx: CollectContext) -> Sequence[Reading]:
        return [Reading(f"m{i}", float(i)) for i in range(self.settings.metrics)]


def write_dist_info(root: Path) -> Path:
    """Register LedgerSlurper as an installed plugin under ``root`` (put ``root`` on the path)."""
    dist = root / "rexmon_reliability_plugins-0.1.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rexmon-reliability-plugins\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[rexmon.slurpers]\nledger = tests.reliability.ledger:LedgerSlurper\n"
        "steady = tests.reliability.ledger:SteadySlurper\n",
        encoding="utf-8",
    )
    return root
