"""Invariants of the exec model (hypothesis), each a sentence of docs/kernel.md#inheritance-invariants /
docs/kernel.md#v5-semantics."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hwcap_operator.auxv import AT_NULL, AT_PAGESZ, AT_SYSINFO_EHDR, HWCAP_TYPES
from hwcap_operator.execmodel.hwcap_exec import apply_mask
from hwcap_operator.execmodel.kernel import Binary, Creds, Kernel, KernelConfig, PatchLevel, PrctlMmMap

word = st.integers(min_value=0, max_value=(1 << 64) - 1)
words3 = st.tuples(word, word, word)
patches = st.sampled_from(["none", "v4", "v5"])
# A process tree as a list of (parent index, optional mask to apply before forking children).
trees = st.lists(st.tuples(st.integers(min_value=0, max_value=50), st.none() | words3), min_size=1, max_size=12)
entry_types = st.sampled_from([*HWCAP_TYPES, AT_NULL, AT_PAGESZ, AT_SYSINFO_EHDR])
Tree = list[tuple[int, tuple[int, ...] | None]]
NOBODY = Creds.user(65534)


def sub(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x & ~y == 0 for x, y in zip(a, b, strict=True))


def build(kernel: Kernel, root_mask: tuple[int, ...], tree: Tree) -> list[int]:
    """hwcap-exec applies ``root_mask``; then each node forks + execs a child of an earlier one, which may
    apply a further mask of its own (a nested hwcap-exec)."""
    root = kernel.spawn("root", creds=NOBODY)
    apply_mask(kernel, root, root_mask)
    kernel.execve(root, Binary("/entry"))
    pids = [root]
    for parent_index, mask in tree:
        parent = pids[parent_index % len(pids)]
        child = kernel.fork(parent)
        assert kernel.execve(child, Binary("/bin/x")) == 0
        if mask is not None:
            apply_mask(kernel, child, mask)
        pids.append(child)
    return pids


@settings(max_examples=60, deadline=None)
@given(node=words3, root_mask=words3, tree=trees)
def test_masks_only_shrink_down_the_tree_v5(node: tuple[int, ...], root_mask: tuple[int, ...], tree: Tree) -> None:
    # kernel.md#inheritance-invariants: child word = parent saved word & kernel word; so every process sees
    # a subset of its parent's view and of root_mask & node.
    kernel = Kernel(KernelConfig.for_arch("arm64", node))
    ceiling = tuple(n & m for n, m in zip(node, root_mask, strict=True))
    seen: dict[int, tuple[int, ...]] = {}
    for pid in build(kernel, root_mask, tree)[1:]:
        seen[pid] = kernel.stack_hwcap(pid)
        assert sub(seen[pid], ceiling)
        assert sub(seen[pid], node)


@settings(max_examples=60, deadline=None)
@given(patch=patches, node=words3, root_mask=words3, junk=st.binary(max_size=432), tree=trees)
def test_fork_preserves_saved_auxv_and_flag(
    patch: PatchLevel, node: tuple[int, ...], root_mask: tuple[int, ...], junk: bytes, tree: Tree
) -> None:
    kernel = Kernel(KernelConfig.for_arch("arm64", node, patch=patch))
    pids = build(kernel, root_mask, tree)
    root = kernel.spawn("cap", creds=Creds())
    kernel.prctl_set_mm_auxv(root, junk)  # arbitrary bytes, any length, with CAP_SYS_RESOURCE
    for pid in [*pids, root]:
        child = kernel.fork(pid)
        parent_mm, child_mm = kernel.task(pid).mm, kernel.task(child).mm
        assert child_mm.saved_auxv == parent_mm.saved_auxv
        assert child_mm.user_hwcap == (parent_mm.user_hwcap and patch != "none")
        assert kernel.stack_hwcap(child) == kernel.stack_hwcap(pid)


@settings(max_examples=60, deadline=None)
@given(node=st.tuples(word, word), mask=st.tuples(word, word), compat_hop=st.booleans(), depth=st.integers(2, 5))
def test_exec_chains_are_stable_under_v5(
    node: tuple[int, int], mask: tuple[int, int], compat_hop: bool, depth: int
) -> None:
    # exec∘exec = exec: after the first masked exec, further execs (also through an ia32 task, whose packed
    # vector v5 reads in the compat layout) see the same words. x86: ia32 shares the words (kernel.md#compat-auxv).
    node32 = (node[0] & 0xFFFFFFFF, node[1] & 0xFFFFFFFF)
    kernel = Kernel(KernelConfig.for_arch("amd64", node32))
    pid = kernel.spawn("p", creds=NOBODY)
    apply_mask(kernel, pid, mask)
    kernel.execve(pid, Binary("/first"))
    first = kernel.stack_hwcap(pid)
    assert first == tuple(n & m & 0xFFFFFFFF for n, m in zip(node32, mask, strict=True))
    for i in range(depth):
        abi = "compat" if compat_hop and i % 2 == 0 else "native"
        kernel.execve(pid, Binary(f"/next{i}", abi=abi))
        assert kernel.stack_hwcap(pid) == first


@settings(max_examples=60, deadline=None)
@given(node=words3, root_mask=words3, junk=st.binary(max_size=432), tree=trees)
def test_patch_none_never_changes_children(
    node: tuple[int, ...], root_mask: tuple[int, ...], junk: bytes, tree: Tree
) -> None:
    kernel = Kernel(KernelConfig.for_arch("arm64", node, patch="none"))
    pids = build(kernel, root_mask, tree)
    root = kernel.spawn("cap")
    kernel.prctl_set_mm_auxv(root, junk)
    child = kernel.fork(root)
    kernel.execve(child, Binary("/c"))
    for pid in [*pids, child]:
        assert kernel.stack_hwcap(pid) == node
        assert not kernel.task(pid).mm.user_hwcap


@settings(max_examples=40, deadline=None)
@given(node=words3, pairs=st.lists(st.tuples(entry_types, word), max_size=26))
def test_v5_child_words_follow_the_scan_rule(node: tuple[int, ...], pairs: list[tuple[int, int]]) -> None:
    # kernel.md#inherit-hwcap as an independent re-statement: last value of each type among the first n HWCAP matches.
    kernel = Kernel(KernelConfig.for_arch("arm64", node))
    pid = kernel.spawn("p", creds=NOBODY)
    raw = kernel.config.native_layout.encode([*pairs, (AT_NULL, 0)])
    assert kernel.prctl_set_mm_map(pid, PrctlMmMap(kernel.proc_stat_layout(pid), raw)) == 0
    got = [0, 0, 0]
    n = 3
    for t, v in pairs:
        if n == 0 or t == AT_NULL:
            break
        if t in HWCAP_TYPES[:3]:
            got[HWCAP_TYPES.index(t)] = v
            n -= 1
    child = kernel.fork(pid)
    kernel.execve(child, Binary("/c"))
    assert kernel.stack_hwcap(child) == tuple(g & w for g, w in zip(got, node, strict=True))
