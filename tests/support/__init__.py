"""Test plumbing shared by every test directory: ports, waits, the CPU dumps, loopback registries, the operator.

One home per concern. Where the development tooling (``hwcap_dev``) already holds an implementation the tests
need too (a free loopback port, the polling loop, where the dumps live), this package re-exports or wraps it:
tests may import the tooling, the tooling never imports tests.
"""
