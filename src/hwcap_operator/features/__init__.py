"""The canonical CPU feature catalog (data) and the parsers that turn node data into features.

Import from here: ``Feature``, the lookup API (``lookup``, ``find``, ``by_bit``, ``by_nfd``,
``bit_names``, ``features``) and the parsers (``parse_cpuinfo``, ``parse_nfd_labels``,
``parse_node_feature``, ``parse_node``). Nobody else in the product re-types a bit table. Auxv bytes are
read by :mod:`hwcap_operator.auxv`.
"""

from __future__ import annotations

from hwcap_operator.features.catalog import (
    ALL_FEATURES,
    UnknownFeatureError,
    bit_names,
    by_bit,
    by_nfd,
    features,
    find,
    known_word_mask,
    lookup,
    nfd_names,
    parse_unknown_bit_name,
    unknown_bit_name,
)
from hwcap_operator.features.cpuinfo import parse_cpuinfo
from hwcap_operator.features.document import parse_document, parse_object
from hwcap_operator.features.model import (
    AT_HWCAP,
    AT_HWCAP2,
    AT_HWCAP3,
    AT_HWCAP4,
    HWCAP_AUXV_TYPES,
    KERNEL_HWCAP_WORDS,
    N_WORDS,
    WORD_NAMES,
    Feature,
)
from hwcap_operator.features.nfd import parse_nfd_labels, parse_node, parse_node_feature
from hwcap_operator.features.result import FeatureParseError, FeatureSet, ParseIssue

__all__ = [
    "ALL_FEATURES",
    "AT_HWCAP",
    "AT_HWCAP2",
    "AT_HWCAP3",
    "AT_HWCAP4",
    "HWCAP_AUXV_TYPES",
    "KERNEL_HWCAP_WORDS",
    "N_WORDS",
    "WORD_NAMES",
    "Feature",
    "FeatureParseError",
    "FeatureSet",
    "ParseIssue",
    "UnknownFeatureError",
    "bit_names",
    "by_bit",
    "by_nfd",
    "features",
    "find",
    "known_word_mask",
    "lookup",
    "nfd_names",
    "parse_cpuinfo",
    "parse_document",
    "parse_nfd_labels",
    "parse_node",
    "parse_node_feature",
    "parse_object",
    "parse_unknown_bit_name",
    "unknown_bit_name",
]
