"""The one exception type whose message is meant for people, not for tracebacks."""


class PunchlineError(Exception):
    """An error the user can act on.

    The command line prints its message as one line and exits non-zero; the bot turns it into a
    friendly chat reply. Subclasses say where it came from (data, model, worker, settings).
    """
