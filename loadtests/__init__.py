"""Locust load tests for the candidate API (issue 7): `python -m loadtests.run --profile lab`."""
