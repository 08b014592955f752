"""Measuring a model: its run is a measurement, and the worker ends once it has reported."""

from modelhub.loading.job_kind import JobKind
from modelhub.measuring import measurements


class MeasureJob(JobKind):
    """A measurement: the worker loads the model, measures it and exits; a success publishes the
    figures as the model's metrics. It leaves the compatibility status alone."""

    name = "measure"
    busy = "being measured"
    doing = "Measuring"
    done_event = "measured"  # the worker's "loaded" on the way is only a step
    keeps_worker = False

    def begin(self, model, settings, claim, trial=None, copy_path=None):
        return measurements.begin(model, settings, claim=claim, copy_path=copy_path)

    def record_stage(self, run_id, stage, **details):
        measurements.set_stage(run_id, stage, **details)

    def finish(self, run_id, outcome, plugins, *, also=None, **details):
        return measurements.finish(run_id, outcome, also=also, **details)

    def interrupt(self, run_id, plugins):
        return measurements.interrupt(run_id)

    def close_left_running(self, plugins, keep):
        return measurements.close_interrupted(keep=keep)

    def request(self, settings):
        return {"measure": settings or {}}
