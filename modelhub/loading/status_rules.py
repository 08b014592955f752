"""The rules a model's ``compatibility_status`` follows, in one place: who may move it, and where to.

=================  =======================  ==========================================================
Event              From                     To
=================  =======================  ==========================================================
load starts        any status; from         ``testing`` (committed with the attempt, before the
                   ``incompatible`` only     worker starts)
                   with ``force``
load succeeds      any (a user may have     ``compatible``; ``degraded`` right after a failure
                   edited it meanwhile)
load fails         any                      ``incompatible``; ``degraded`` right after a success
load interrupted   any                      the status before the load (``unknown`` if that was a
(cancel, restart)                           stale ``testing``): as if it had not been tried
user edit          any                      any of the five statuses
=================  =======================  ==========================================================

"Right after" looks at the model's previous finished attempt; interruptions do not count. After an
attempt ends the model is never left ``testing``: ``testing`` means "a load is running".
"""


def may_start(status: str, *, force: bool) -> bool:
    """Whether a load may start from ``status`` (the supervisor answers 409 otherwise)."""
    return status != "incompatible" or force


def next_status(outcome: str, previous_outcome: str | None, status_before: str) -> str:
    """The status an attempt's ending sets. ``previous_outcome``: the last finished (success or failure)
    attempt before this one; ``status_before``: the model's status when this attempt began."""
    if outcome == "success":
        return "degraded" if previous_outcome == "failure" else "compatible"
    if outcome == "failure":
        return "degraded" if previous_outcome == "success" else "incompatible"
    # Interrupted: as if it had not been tried. A "testing" from before is stale (no load runs now).
    return "unknown" if status_before == "testing" else status_before
