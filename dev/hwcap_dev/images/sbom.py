"""A CycloneDX 1.5 SBOM (JSON) for each image, written from what the build put in it.

The components are not scanned from the result but recorded while assembling: the Debian packages
unpacked, the Go modules compiled in (``go version -m``), and our own binaries with their SHA-256. The
file is stored beside the image's OCI layout (``<name>.cdx.json``) and named by an annotation on the
image manifest (``dev.hwcap.sbom``) so one can be found from the other.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .debs import DebPackage


@dataclass(frozen=True)
class Component:
    """One CycloneDX component."""

    kind: str  # "library" | "application"
    name: str
    version: str
    purl: str | None = None
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of this component."""
        doc: dict[str, Any] = {"type": self.kind, "name": self.name, "version": self.version}
        if self.purl:
            doc["purl"] = self.purl
            doc["bom-ref"] = self.purl
        if self.sha256:
            doc["hashes"] = [{"alg": "SHA-256", "content": self.sha256}]
        return doc


def deb_component(pkg: DebPackage) -> Component:
    """A Debian package as a component."""
    return Component("library", pkg.name, pkg.version, pkg.purl)


def file_component(name: str, version: str, path: Path) -> Component:
    """One of our own binaries, identified by its hash."""
    return Component("application", name, version, sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def go_components(binary: Path) -> list[Component]:
    """The Go toolchain and every module compiled into ``binary``, read by ``go version -m``."""
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    comps: list[Component] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("dep", "mod") and parts[2].startswith("v"):
            comps.append(Component("library", parts[1], parts[2], f"pkg:golang/{parts[1]}@{parts[2]}"))
        elif len(parts) == 2 and parts[0].endswith(":") and parts[1].startswith("go"):
            comps.append(Component("library", "golang", parts[1], f"pkg:golang/std@{parts[1]}"))
    return comps


def bom(image_name: str, image_version: str, components: Sequence[Component]) -> dict[str, Any]:
    """The CycloneDX document describing ``image_name`` made of ``components``."""
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image_name + ':' + image_version)}",
        "version": 1,
        "metadata": {
            "component": {"type": "container", "name": image_name, "version": image_version},
            "tools": {"components": [{"type": "application", "name": "hwcap_dev.images"}]},
        },
        "components": [c.as_dict() for c in components],
    }


def write_bom(path: Path, doc: dict[str, Any]) -> Path:
    """Write the SBOM as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
