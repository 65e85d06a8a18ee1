"""The exec-model validation is shared between nodes of the same hardware, yet names the node it judged.

After a restart every domain is validated again; the simulation is cached on (mask, node features) so
that domains over the same kinds of hardware reuse it. The cache must not leak one node's name into
another node's finding.
"""

from __future__ import annotations

from domaindata import G2, G3, node

from hwcap_operator.domain.mask_checks import exec_model_validator


def test_a_node_lacking_mask_features_is_named_even_when_its_hardware_was_judged_before() -> None:
    richer_mask = node("g3", G3).mask
    assert richer_mask is not None
    first = exec_model_validator(richer_mask, [node("alpha-g2", G2)])
    second = exec_model_validator(richer_mask, [node("beta-g2", G2)])
    assert first and second, "a Graviton2 lacks features of a Graviton3 mask: the model must say so"
    assert [f.code for f in first] == [f.code for f in second]
    for findings, own, other in ((first, "alpha-g2", "beta-g2"), (second, "beta-g2", "alpha-g2")):
        text = " ".join(f"{f.message} {f.node}" for f in findings)
        assert own in text and other not in text
        assert "\x00" not in text
