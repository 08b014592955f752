"""What modelhub/loading/leases.py answers about a model's lease: one word for what it found, and the
lease itself."""

from dataclasses import dataclass

from modelhub.models import WorkerLease

# What a look at a model's lease finds (Claim.outcome).
GRANTED = "granted"  # claim(): the lease is ours now, committed with the job's run
FREE = "free"  # nobody holds it (any more)
BUSY_HERE = "busy_here"  # this process holds it: its worker runs here
BUSY_ELSEWHERE = "busy_elsewhere"  # another live process holds it, on this host or another
TAKEN_OVER = "taken_over"  # its owner was dead: this call removed the lease; the caller closes the run


@dataclass(frozen=True)
class Claim:
    """The answer about one model's lease: ``lease`` is the lease found (in the way, taken over or
    let go); ``opened``, when GRANTED, what claim()'s ``open_run`` returned."""

    outcome: str
    lease: WorkerLease | None = None
    opened: object = None

    @property
    def granted(self) -> bool:
        return self.outcome == GRANTED

    @property
    def busy(self) -> bool:
        return self.outcome in (BUSY_HERE, BUSY_ELSEWHERE)

    @property
    def taken_over(self) -> bool:
        return self.outcome == TAKEN_OVER
