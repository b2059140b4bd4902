"""The lab's one clock, in the formats that users' databases, manifests and promotion pointers already hold."""

import re

from digitlab.clock import utc_file_stamp, utc_timestamp

SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"
MILLISECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


def test_times_are_utc_to_the_second_unless_milliseconds_are_asked_for():
    assert re.fullmatch(SECONDS, utc_timestamp())
    assert re.fullmatch(MILLISECONDS, utc_timestamp("milliseconds"))


def test_the_file_stamp_has_no_separators_and_sorts_by_time():
    assert re.fullmatch(r"\d{8}T\d{6}", utc_file_stamp())
