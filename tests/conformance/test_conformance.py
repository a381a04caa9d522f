"""Every selected adapter against every check (see harness/checks.py for the checks)."""


def test_conformance(conformance_case):
    conformance_case.run()
