"""Times as readers see them: in the zone named, with its offset shown."""

import datetime as dt

import pytest

from cbt import times

# 00:30 UTC on 2 December 2026: 07:30 in Hà Nội, already the next day nowhere, the day before in New York.
T = dt.datetime(2026, 12, 2, 0, 30, 5, tzinfo=dt.UTC)


def test_a_time_in_its_zone_with_the_offset_in_either_language():
    assert times.text(T, "Asia/Ho_Chi_Minh") == "07:30 02/12/2026 (GMT+7)"
    assert times.text(T, "Asia/Ho_Chi_Minh", "en", seconds=True) == "2026-12-02 07:30:05 (GMT+7)"
    assert times.text(T, "America/New_York") == "19:30 01/12/2026 (GMT-5)"
    assert times.text(T, "Asia/Kolkata") == "06:00 02/12/2026 (GMT+5:30)"
    assert times.text(T, "UTC") == "00:30 02/12/2026 (GMT)"


def test_files_get_iso_8601_with_the_offset():
    assert times.iso(T, "Asia/Ho_Chi_Minh") == "2026-12-02T07:30:05+07:00"
    assert dt.datetime.fromisoformat(times.iso(T, "Asia/Tokyo")) == T
    assert times.iso(None, "Asia/Tokyo") is None


def test_the_page_element_carries_the_instant_and_the_zone_name():
    assert str(times.html(T, "Asia/Ho_Chi_Minh")) == (
        '<time datetime="2026-12-02T07:30:05+07:00" title="Asia/Ho_Chi_Minh">07:30 02/12/2026 (GMT+7)</time>'
    )
    assert str(times.html(None, "Asia/Ho_Chi_Minh")) == ""


def test_summer_time_changes_the_label():
    assert times.zone_label("Europe/Paris", dt.datetime(2026, 7, 1, tzinfo=dt.UTC)) == "GMT+2"
    assert times.zone_label("Europe/Paris", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == "GMT+1"


@pytest.mark.parametrize("name", ["", "GMT+7", "Mars/Olympus", "../etc/passwd", "/etc/localtime"])
def test_only_iana_names_are_zones(name):
    assert not times.is_zone(name)
    with pytest.raises(times.UnknownZone):
        times.zone(name)


def test_an_exam_without_a_zone_has_the_servers():
    assert times.exam_zone({"time_zone": None}, "Asia/Ho_Chi_Minh") == "Asia/Ho_Chi_Minh"
    assert times.exam_zone({"time_zone": "Asia/Tokyo"}, "Asia/Ho_Chi_Minh") == "Asia/Tokyo"
    assert times.exam_zone(None, "Asia/Bangkok") == "Asia/Bangkok"
