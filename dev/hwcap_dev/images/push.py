"""Build every dev-cluster image and push it to a loopback registry; returns the references to use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .recipes import RECIPES, BuiltImage
from .registry import RegistryClient


@dataclass(frozen=True)
class PushedImages:
    """``host/repo:tag`` of each dev-cluster image (what pods and containerd's config name)."""

    pause: str
    init: str
    sample: str


def push(client: RegistryClient, image: BuiltImage) -> str:
    """Push one built image (index or single manifest); returns ``host/repo:tag``."""
    if image.index is not None:
        client.push_index(image.repo, image.tag, list(image.images), image.index)
    else:
        client.push_image(image.repo, image.tag, image.images[0])
    return f"{client.host}/{image.repo}:{image.tag}"


def build_and_push(client: RegistryClient, out: Path, deb_cache: Path) -> PushedImages:
    """Assemble pause, init and sample under ``out`` and push them."""
    refs = {name: push(client, recipe(out, deb_cache)) for name, recipe in RECIPES.items()}
    return PushedImages(pause=refs["pause"], init=refs["init"], sample=refs["sample"])
