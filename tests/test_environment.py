from dpfl_course.environment import PackageStatus, check_environment, environment_report, pinned_requirements


def test_pins_are_read_from_the_installed_package():
    pins = pinned_requirements()
    assert pins["torch"] == "2.13.0"
    assert "pytest" not in pins  # test tools are an extra, not needed by learners


def test_this_environment_matches_the_pins():
    rows = check_environment()
    assert rows and all(r.ok for r in rows), [r for r in rows if not r.ok]


def test_report_says_what_is_missing_and_what_differs():
    rows = [PackageStatus("opacus", "1.6.0", None), PackageStatus("numpy", "2.4.6", "2.3.0"),
            PackageStatus("torch", "2.13.0", "2.13.0")]
    text = environment_report(rows, python=(3, 11))
    assert "opacus is missing" in text
    assert "numpy 2.3.0 is installed" in text and "2.4.6" in text
    assert "torch" not in text
    assert "course.py lab" in text


def test_missing_distribution_gives_no_pins():
    assert pinned_requirements("no-such-distribution-xyz") == {}
    assert "not installed" in environment_report([], python=(3, 11))
