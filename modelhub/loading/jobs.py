"""The kinds of worker job, by the name a worker lease stores (``models.WORKER_JOBS``).

A new kind is a JobKind subclass in its feature's package (as measuring/measure_job.py), its run
records, and one line here; the supervisor and the watcher need no change.
"""

from modelhub.loading.load_job import LoadJob
from modelhub.measuring.measure_job import MeasureJob

LOAD = LoadJob()
MEASURE = MeasureJob()
KINDS = {kind.name: kind for kind in (LOAD, MEASURE)}
