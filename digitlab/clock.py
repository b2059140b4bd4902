"""The lab's one clock: every time it records is UTC, so runs, drawings and models compare across machines.

Stored times are ISO 8601 with their offset (``2024-05-01T12:00:00+00:00``); the saved drawings keep
milliseconds, everything else whole seconds, as they always have.
"""

import datetime


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def utc_timestamp(timespec: str = "seconds") -> str:
    """The current time as ISO 8601 text, to ``timespec`` (``datetime.isoformat``'s: "seconds", "milliseconds")."""
    return utc_now().isoformat(timespec=timespec)


def utc_file_stamp() -> str:
    """The current time to the second without separators (``20240501T120000``): sorts by time, safe in file names."""
    return f"{utc_now():%Y%m%dT%H%M%S}"
