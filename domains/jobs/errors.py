"""What a job's code raises to steer its lifecycle. Pure logic: no Django imports."""

from __future__ import annotations


class PermanentError(Exception):
    """The job can never succeed (bad input, a refused request): fail it now, do not retry.

    Its message becomes the job's ``error``, which users see: write it for them.
    """


class LeaseLost(Exception):
    """This attempt no longer owns its job (taken over, timed out, or released at shutdown).

    Raised by the progress API; the handler should let it propagate. Nothing this attempt does
    afterwards can change the job: its finish is refused by the attempt check.
    """


class JobCancelled(Exception):
    """The job was asked to stop (``cancel_requested``, PROTOCOL.md §2).

    Raised by the progress API once the worker has seen the request; the handler lets it
    propagate (after stopping what it started), and the job ends CANCELLED. Work already
    committed stays (an Excel import's written chunks, a message's sent batches).
    """
