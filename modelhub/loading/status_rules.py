"""The rules a model's ``compatibility_status`` follows, in one place: who may move it, and where to.

A load's result is true in the environment it ran in (host, accelerator, driver, library versions:
``modelhub/environments.py``), so the rules apply per environment first. When an attempt ends, its
``environment_status`` (the model's status in that environment) moves by this table:

=================  =======================  ==========================================================
Event              From                     To (in the attempt's environment)
=================  =======================  ==========================================================
load succeeds      any                      ``compatible``; ``degraded`` right after a failure, or
                                            when it loaded only with parts offloaded to CPU or disk
                                            (``load_report["degraded_reason"]``: the reason shown)
load fails         any                      ``incompatible``; ``degraded`` right after a success
=================  =======================  ==========================================================

"Right after" looks at the model's previous finished attempt *in the same environment*; interruptions
do not count. A load that could not be tried at all — the model's files are neither on disk nor
reachable (``FilesUnavailable``: no network, or ``HF_HUB_OFFLINE``) — is no verdict either: it is recorded
``interrupted``, with its cause, and the status is left as it was. A success on the CUDA laptop right after a failure on the ROCm desktop is ``compatible``
on the laptop and stays ``incompatible`` on the desktop.

The model's own ``compatibility_status`` is the user's field and the registry's summary:

=================  =======================  ==========================================================
Event              From                     To
=================  =======================  ==========================================================
load starts        any status; from         ``testing`` (committed with the attempt, before the
                   ``incompatible`` only     worker starts)
                   with ``force``, unless
                   this host never tried
                   it in the environment
                   it runs in now
load succeeds or   any (a user may have     the summary of the environments' statuses (below)
fails; a loaded    edited it meanwhile)
worker dies
load interrupted   any                      the status before the load (``unknown`` if that was a
(cancel, restart)                           stale ``testing``): as if it had not been tried
user edit          any                      any of the five statuses; it stays until the next
                                            attempt ends
=================  =======================  ==========================================================

The summary, when environments disagree: for each host only its newest environment that has a result
for the model counts (an upgrade's older fingerprints are superseded once the new one has a result;
until then the old result still counts, shown as stale); results recorded before environments were
count only when no environment has one. The summary is the best of the counted statuses, ranked
``compatible`` > ``degraded`` > ``incompatible``: ``compatible`` means "some current environment loads
it fully", and each host's card says when its own status differs. After an attempt ends the model is
never left ``testing``: ``testing`` means "a load is running".
"""

from collections.abc import Iterable

# A worker's failure of these types says nothing about the model: the attempt ends interrupted.
NOT_A_VERDICT = ("FilesUnavailable",)

# Best first: what the summary of several environments picks.
RANKED = ("compatible", "degraded", "incompatible")


def may_start(status: str, *, force: bool, here: str | None = None, learned_elsewhere: bool = False) -> bool:
    """Whether a load may start (the supervisor answers 409 otherwise). ``status``: the registry's
    summary; ``here``: the model's status in the environment this host runs in now (None: untried
    here); ``learned_elsewhere``: results exist from other environments (another host, or this host
    before an upgrade). An ``incompatible`` learned elsewhere does not stop this host from trying: the
    CUDA laptop may load what failed on the ROCm desktop, and a fixed library may load what an old one
    could not. An ``incompatible`` found here, or set by hand, needs ``force``."""
    if force:
        return True
    if here is not None:
        return here != "incompatible"
    return status != "incompatible" or learned_elsewhere


def environment_status(outcome: str, previous_outcome: str | None, degraded_reason: str | None = None) -> str | None:
    """The model's status in an environment after an attempt there ended with ``outcome``;
    ``previous_outcome``: the last finished attempt before it *in the same environment*. None for an
    interruption (it teaches nothing about the environment)."""
    if outcome == "success":
        return "degraded" if previous_outcome == "failure" or degraded_reason else "compatible"
    if outcome == "failure":
        return "degraded" if previous_outcome == "success" else "incompatible"
    return None


def summary(counted: Iterable[str]) -> str | None:
    """The registry's status from the counted environments' statuses (None: none counted)."""
    return min(counted, key=RANKED.index, default=None)


def status_after_interruption(status_before: str) -> str:
    """Interrupted: as if it had not been tried. A "testing" from before is stale (no load runs now)."""
    return "unknown" if status_before == "testing" else status_before
