"""Loading a model: its run is a load attempt, and a successful load keeps its worker holding the model."""

from modelhub.loading import attempts
from modelhub.loading.job_kind import JobKind


class LoadJob(JobKind):
    """A load: the attempt moves the model's compatibility status, and every ending is told to the
    plugins (``load_attempt_finished``)."""

    name = "load"
    busy = "loading"
    doing = "Loading"
    done_event = "loaded"
    keeps_worker = True

    def begin(self, model, settings, claim, trial=None, copy_path=None):
        return attempts.begin(model, claim=claim, trial=trial, copy_path=copy_path)

    def record_stage(self, run_id, stage, **details):
        attempts.set_stage(run_id, stage, **details)

    def finish(self, run_id, outcome, plugins, *, also=None, **details):
        attempt = attempts.finish(run_id, outcome, also=also, **details)
        if attempt is not None:
            attempts.tell_plugins(plugins, attempt)
        return attempt

    def interrupt(self, run_id, plugins):
        return attempts.interrupt(run_id, plugins)

    def died_while_holding(self, run_id, plugins, *, error_message, explanation, also=None):
        # A failed attempt after the successful one: the status moves as for a failure right after a
        # success (degraded), and the successful attempt stays what it was (the model did load).
        attempt = attempts.record_death_while_loaded(run_id, error_message=error_message, explanation=explanation,
                                                     also=also)
        if attempt is not None:
            attempts.tell_plugins(plugins, attempt)
        return attempt

    def close_left_running(self, plugins, keep):
        return attempts.close_interrupted(plugins, keep=keep)
