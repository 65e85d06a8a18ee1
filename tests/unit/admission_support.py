"""Test-side models for the admission tests: what the kubelet runs, and a table-backed resolver.

Written from the Kubernetes rules (kubelet command/args/ENTRYPOINT/CMD table and the ``$(VAR)`` expansion
in third_party/forked/golang/expansion), independently of the code under test.
"""

from __future__ import annotations

from typing import Any

from hwcap_operator.admission import ImageEntrypoint, ImageRequest, Unresolvable


class TableResolver:
    """An EntrypointResolver over a fixed table (the OCI-backed one is tested against a real registry)."""

    def __init__(self, table: dict[str, ImageEntrypoint]) -> None:
        self.table = table
        self.requests: list[ImageRequest] = []

    def resolve(self, request: ImageRequest) -> ImageEntrypoint:
        self.requests.append(request)
        if request.image not in self.table:
            raise Unresolvable(f"manifest unknown for {request.image}")
        return self.table[request.image]


def kubelet_expand(s: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): $$ → $, unknown refs kept."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "$" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = s.find(")", i + 2)
                if end != -1:
                    name = s[i + 2 : end]
                    out.append(env.get(name, s[i : end + 1]))
                    i = end + 1
                    continue
        out.append(s[i])
        i += 1
    return "".join(out)


def effective_argv(container: dict[str, Any], images: dict[str, ImageEntrypoint]) -> list[str]:
    """What the container runs, per the kubelet's command/args/ENTRYPOINT/CMD table."""
    env = {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e}
    command = [kubelet_expand(a, env) for a in container.get("command") or []]
    args = [kubelet_expand(a, env) for a in container.get("args") or []]
    if command:
        return command + args
    image = images[container["image"]]
    return list(image.entrypoint) + (args if args else list(image.cmd))
