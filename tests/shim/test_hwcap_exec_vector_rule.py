"""hwcap-exec's vector rule on synthetic vectors (duplicates, missing words, oversize), via a C driver that
compiles the binary's own source. A real process cannot start with such a vector (exec rebuilds it), so
these branches are only reachable this way. Expectations: execmodel.hwcap_exec.masked_vector (the model of
the binary) and the rule as the binary's header documents it, written out here independently."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from hwcap_exec_support import compile_driver
from hypothesis import given, settings
from hypothesis import strategies as st

from hwcap_operator.auxv import AT_NULL, HWCAP_TYPES
from hwcap_operator.execmodel.hwcap_exec import masked_vector

Pair = tuple[int, int]
WORD = 2**64 - 1
OTHER_TYPES = (3, 6, 9, 15, 25, 31, 33, 51)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("driver") / "build_masked_driver"
    return compile_driver(Path(__file__).with_name("build_masked_driver.c"), out)


def build(
    driver: Path, masks: Sequence[int | None], stack: Sequence[Pair], saved: Sequence[Pair], size: int = 0
) -> str:
    def flat(pairs: Sequence[Pair]) -> list[str]:
        return [str(len(pairs)), *(str(x) for p in pairs for x in p)]

    tokens = ["-" if m is None else str(m) for m in masks] + [str(size), *flat(stack), *flat(saved)]
    proc = subprocess.run([str(driver)], input=" ".join(tokens), capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def pairs_of(line: str) -> list[Pair]:
    assert line.startswith("ok"), line
    nums = [int(x) for x in line.split()[1:]]
    return list(zip(nums[0::2], nums[1::2], strict=True))


def documented_rule(masks: Sequence[int | None], stack: Sequence[Pair], saved: Sequence[Pair]) -> list[Pair]:
    """The header's steps 2 and 3, spelled out independently of the C code."""
    mask = {t: (WORD if m is None else m) for t, m in zip(HWCAP_TYPES, masks, strict=True)}
    last = {t: v for t, v in saved if t in mask}
    out: list[Pair] = []
    for t, v in saved:
        if t not in mask:
            out.append((t, v))
        elif t not in {u for u, _ in out}:
            out.append((t, last[t] & mask[t]))
    kernel = {t: v for t, v in stack if t in mask}
    out += [(t, kernel[t] & mask[t]) for t in HWCAP_TYPES if t in kernel and t not in last]
    return out


entry_types = st.sampled_from(HWCAP_TYPES + OTHER_TYPES)
vectors = st.lists(st.tuples(entry_types, st.integers(0, WORD)), max_size=24)
mask_words = st.lists(st.one_of(st.none(), st.integers(0, WORD)), min_size=4, max_size=4)


@settings(max_examples=200, deadline=None)
@given(saved=vectors, masks=mask_words, stack=vectors)
def test_agrees_with_the_execmodel(driver: Path, saved: list[Pair], masks: list[int | None], stack: list[Pair]) -> None:
    """The binary writes exactly execmodel.hwcap_exec.masked_vector, given the HWCAP words on its initial stack:
    options given or not, duplicated words, words missing from the saved vector, words the kernel lacks."""
    provided = {t: v for t, v in stack if t in HWCAP_TYPES}  # stack_find: the last entry of a type wins
    expected = masked_vector(saved, masks, provided)
    assert expected[-1] == (AT_NULL, 0)
    assert pairs_of(build(driver, masks, stack, saved)) == expected[:-1]


@settings(max_examples=150, deadline=None)
@given(saved=vectors, masks=mask_words, stack=vectors)
def test_follows_the_documented_rule(
    driver: Path, saved: list[Pair], masks: list[int | None], stack: list[Pair]
) -> None:
    assert pairs_of(build(driver, masks, stack, saved)) == documented_rule(masks, stack, saved)


def test_a_duplicate_keeps_its_first_place_and_its_last_value(driver: Path) -> None:
    saved = [(33, 1), (16, 0xF0), (26, 0x2), (16, 0x0F)]
    assert pairs_of(build(driver, [0x3, None, None, None], [], saved)) == [(33, 1), (16, 0x3), (26, 0x2)]


def test_a_word_missing_from_the_saved_vector_is_added_from_the_kernels(driver: Path) -> None:
    stack = [(16, 0xFF), (26, 0x6)]
    assert pairs_of(build(driver, [0x3C, 0x3, 0, 0], stack, [(16, 0xFF)])) == [(16, 0x3C), (26, 0x2)]


def test_a_word_the_kernel_does_not_provide_is_never_added(driver: Path) -> None:
    """x86 gives AT_HWCAP and AT_HWCAP2 only: --hwcap3/--hwcap4 words add no entry."""
    stack = [(16, 0xFF), (26, 0x6)]
    saved = [(16, 0xFF), (26, 0x6)]
    assert pairs_of(build(driver, [0x3C, 0x2, WORD, WORD], stack, saved)) == [(16, 0x3C), (26, 0x2)]
    assert masked_vector(saved, [0x3C, 0x2, WORD, WORD], dict(stack))[:-1] == [(16, 0x3C), (26, 0x2)]


def test_a_vector_larger_than_saved_auxv_is_refused(driver: Path) -> None:
    saved = [(t, 1) for t in OTHER_TYPES[:3]]
    # 3 pairs + AT_NULL = 64 bytes fit exactly; adding AT_HWCAP from the kernel needs 80.
    assert pairs_of(build(driver, [None] * 4, [], saved, size=64)) == saved
    assert build(driver, [0x1, None, None, None], [(16, 0xFF)], saved, size=64) == (
        "err the masked auxv needs 80 bytes, the kernel's saved_auxv holds 64"
    )
