"""Turn what a user types on the command line (file names, mask strings) into parsed objects, or BadInput.

Every failure becomes :class:`BadInput` whose message names the input and the problem, so the CLI can
exit 2 with one clear line instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from hwcap_operator.arch import UnknownArchError
from hwcap_operator.features import FeatureParseError, FeatureSet, UnknownFeatureError, parse_document
from hwcap_operator.mask import ArchMismatchError, FeatureMask, MaskParseError


class BadInput(Exception):
    """Input the CLI cannot use; the message is shown as-is and the exit code is 2."""


def read_feature_file(path: str) -> FeatureSet:
    """Parse a cpuinfo/lscpu dump, NFD label file, Node or NodeFeature YAML/JSON; malformed tokens are errors."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not a text file ({exc.reason})") from exc
    try:
        parsed = parse_document(text, source=path)
    except (FeatureParseError, UnknownArchError) as exc:
        raise BadInput(str(exc)) from exc
    if parsed.errors:
        raise BadInput("; ".join(str(e) for e in parsed.errors))
    return parsed


def parse_mask_spec(spec: str) -> FeatureMask:
    """A mask from a canonical string (``arm64:hwcap=0x..;...``), ``preset:NAME``, or a file.

    A file may hold a canonical string, the JSON/YAML that ``hwcapctl baseline -o json`` prints (its
    ``mask.canonical``), or a node description (then the node's own features are the mask).
    """
    if spec.startswith("preset:"):
        return _preset(spec.removeprefix("preset:"))
    if ":" in spec and "=" in spec and not Path(spec).exists():
        try:
            return FeatureMask.parse(spec)
        except (MaskParseError, UnknownArchError) as exc:
            raise BadInput(f"--mask: {exc}") from exc
    path = Path(spec)
    if not path.exists():
        raise BadInput(f"--mask {spec!r}: neither a canonical mask string, preset:NAME, nor an existing file")
    text = path.read_text(encoding="utf-8")
    stripped = text.strip()
    if "\n" not in stripped and ":" in stripped and "=" in stripped:
        try:
            return FeatureMask.parse(stripped)
        except (MaskParseError, UnknownArchError) as exc:
            raise BadInput(f"{spec}: {exc}") from exc
    canonical = _canonical_from_document(text)
    if canonical is not None:
        try:
            return FeatureMask.parse(canonical)
        except (MaskParseError, UnknownArchError) as exc:
            raise BadInput(f"{spec}: {exc}") from exc
    return read_feature_file(spec).mask


def _canonical_from_document(text: str) -> str | None:
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("mask"), dict):
        canonical = doc["mask"].get("canonical")
        return canonical if isinstance(canonical, str) else None
    return None


def _preset(name: str) -> FeatureMask:
    from hwcap_operator import presets

    try:
        return presets.preset(name)
    except KeyError as exc:
        raise BadInput(f"unknown preset {name!r}; known: {', '.join(presets.preset_names())}") from exc


def same_arch(sets: list[FeatureSet]) -> None:
    """Raise BadInput naming the inputs when they are not all of one architecture."""
    arches = {s.arch for s in sets}
    if len(arches) > 1:
        listing = ", ".join(f"{s.source} ({s.arch})" for s in sets)
        raise BadInput(f"inputs mix architectures: {listing}")


__all__ = ["ArchMismatchError", "BadInput", "UnknownFeatureError", "parse_mask_spec", "read_feature_file", "same_arch"]
