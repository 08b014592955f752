"""What every kind of worker job offers the supervisor and the watcher, so that neither of them
compares job names: each kind is one object (modelhub/loading/jobs.py lists them)."""

from modelhub.models import ModelRegistry, WorkerRun


class JobKind:
    """One kind of work a worker does on a model: a load, a measurement (and the next ones).

    ``name`` is the value a worker lease stores and the API shows (``WorkerJob``). A subclass says how
    the run recording one job (a LoadAttempt, a Measurement) begins, moves to a stage, finishes and is
    interrupted, and what a success leaves behind: with ``keeps_worker`` the worker goes on holding the
    model until it is unloaded (a load); without, it ends by itself (a measurement).
    """

    name: str
    busy: str  # the words of the 409 for a second job on the model: "'m' is already {busy} (...)"
    doing: str  # the verb of the log line that starts it: "{doing} m. Using custom load config: ..."
    done_event: str  # the worker's message that says the job succeeded
    keeps_worker: bool

    def begin(self, model: ModelRegistry, settings: dict | None, claim, trial=None,
              copy_path: str | None = None) -> WorkerRun:
        """Open the job's run and commit it; ``claim(run_id)`` adds the worker's lease to that transaction.
        ``trial`` (a load only): an auto-configure try's config, run instead of the saved one.
        ``copy_path``: the copy of the model's files the worker is sent (the run records it)."""
        raise NotImplementedError

    def record_stage(self, run_id: int, stage: str, **details) -> None:
        """The worker moved on (``details``: its pid, the final kwargs, ...); its own transaction."""
        raise NotImplementedError

    def finish(self, run_id: int, outcome: str, plugins, *, also=None, **details) -> WorkerRun | None:
        """Close the run with ``outcome``; ``also()`` adds the lease's change to the same transaction.
        Returns the run, or None if it was closed already (a cancel racing the worker's report)."""
        raise NotImplementedError

    def interrupt(self, run_id: int, plugins) -> WorkerRun | None:
        """Close the run of a server that stopped or died (a lease taken over from a dead owner)."""
        raise NotImplementedError

    def died_while_holding(self, run_id: int, plugins, *, error_message: str, explanation: str,
                           also=None) -> WorkerRun | None:
        """A kind that keeps its worker: the worker of the successful run ``run_id`` ended on its own
        while holding the model. Record it (``also()`` adds the lease's release to the transaction);
        None if the model is gone."""
        raise NotImplementedError

    def close_left_running(self, plugins, keep: set[int]) -> list[int]:
        """At start-up: close the runs of this kind a previous server left running, but those in
        ``keep`` (a live process still runs them); returns the closed runs' ids."""
        raise NotImplementedError

    def request(self, settings: dict | None) -> dict:
        """What this kind adds to the worker's request (read by modelhub/loading/worker.py)."""
        return {}
