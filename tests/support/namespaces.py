"""Namespaces a test makes and removes again."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from kubernetes import client


@contextlib.contextmanager
def temporary_namespace(core_v1: client.CoreV1Api, name: str) -> Iterator[str]:
    """Create namespace ``name``; delete it on exit, whatever happened (deletion runs on in the background)."""
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        with contextlib.suppress(client.ApiException):
            core_v1.delete_namespace(name)
