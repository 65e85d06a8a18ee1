"""The lab's own plumbing without qemu: serialisation of scenarios, console parsing, the comparison."""

from __future__ import annotations

import pytest
from kernellab.build import LabError
from kernellab.guest import model_by_key, parse_console, qemu_command
from kernellab.idregs import decode
from kernellab.lab import compare, scenarios_for
from kernellab.scenariofile import scenario_files, step_line

from hwcap_operator.execmodel.kernel import Binary
from hwcap_operator.execmodel.scenarios import AuxvEdit, Observation, Scenario, Step


def test_every_lab_scenario_serialises_for_every_model() -> None:
    for key in ("arm64/cortex-a53", "arm64/a64fx", "amd64/qemu64"):
        model = model_by_key(key)
        files = scenario_files(model.arch, scenarios_for(model))
        names = files["index"].decode().split()
        assert ("compat-child" in names) == model.compat
        for name in names:
            first = files[f"{name}.steps"].decode().splitlines()[0]
            assert first.startswith("spawn init ")


def test_edit_serialisation_keeps_every_field() -> None:
    step = Step(
        "set_mm_map",
        "init",
        edit=AuxvEdit(mask=((16, 0xF0),), drop=(26,), prepend=((16, 0),), append=((26, 1),), keep_through=16,
                      length=24),
    )  # fmt: skip
    assert step_line("arm64", step, "x") == (
        "set_mm_map init mask=16:0xf0 drop=26 prepend=16:0x0 append=26:0x1 keep=16 len=24"
    )


def test_unknown_binary_and_op_are_named() -> None:
    with pytest.raises(LabError, match="/bin/sh"):
        step_line("arm64", Step("exec", "init", binary=Binary("/bin/sh")), "scenario s step 3")
    with pytest.raises(LabError, match=r"amd64 guest has no binary ./probe32"):
        step_line("amd64", Step("exec", "init", binary=Binary("/probe32", abi="compat")), "s")
    with pytest.raises(LabError, match="hwcap_exec needs a mask"):
        step_line("arm64", Step("hwcap_exec", "init"), "s")
    bad = Scenario("bad", "", (Step("observe", "init"),))
    with pytest.raises(LabError, match="first step must be a spawn"):
        scenario_files("arm64", [bad])


def test_console_parsing_skips_kernel_lines_and_flags_garbled_ones() -> None:
    console = 'Booting Linux\n@lab {"event":"boot"}\r\n[ 1.0] x @lab {"scn":"a","step":0}\n@lab {"broken\n'
    records = parse_console(console.replace("\r", ""))
    assert records[0] == {"event": "boot"}
    assert records[1] == {"scn": "a", "step": 0}
    assert records[2]["event"] == "garbled"


def test_a64fx_boots_with_gicv3_and_1g() -> None:
    cmd = qemu_command(model_by_key("a64fx"), __import__("pathlib").Path("/k"), __import__("pathlib").Path("/i"))
    assert cmd[cmd.index("-M") + 1] == "virt,gic-version=3"
    assert cmd[cmd.index("-m") + 1] == "1G"
    assert "-no-reboot" in cmd


def _line(step: int, op: str, proc: str, result: int, **extra: object) -> dict[str, object]:
    return {"scn": "s", "step": step, "op": op, "proc": proc, "result": result, **extra}


def test_compare_reports_each_kind_of_difference() -> None:
    # /proc/self/auxv of a native process: (AT_HWCAP, 0xff), (AT_HWCAP2, 0x3), (AT_NULL, 0)
    auxv = "".join(v.to_bytes(8, "little").hex() for v in (16, 0xFF, 26, 0x3, 0, 0))
    predicted = [
        Observation(0, "spawn", "init", 0),
        Observation(1, "set_mm_map", "init", 0),
        Observation(2, "observe", "init", 0, hwcap=(0xFF, 0x3), saved={"AT_HWCAP": 0xFF, "AT_HWCAP2": 0x3}, secure=0),
    ]
    same = [
        _line(0, "spawn", "init", 0),
        _line(1, "set_mm_map", "init", 0),
        _line(2, "observe", "init", 0, stack=["0xff", "0x3"], auxv=auxv, secure=0, abi="native"),
    ]
    assert compare(predicted, same) == []
    differ = [
        _line(0, "spawn", "init", 0),
        _line(1, "set_mm_map", "init", -22),
        _line(2, "observe", "init", 0, stack=["0xf", "0x3"], auxv=auxv.replace("ff", "0f", 1), secure=1, abi="native"),
    ]
    problems = compare(predicted, differ)
    assert any("step 1 set_mm_map init: result model 0 guest -22" in p for p in problems)
    assert any("AT_HWCAP* on the stack" in p for p in problems)
    assert any("/proc/self/auxv" in p for p in problems)
    assert any("AT_SECURE" in p for p in problems)
    missing = compare(predicted, same[:2])
    assert missing == ["step 2 observe init: expected one guest line, got 0"]


def test_id_register_decoding_follows_the_architecture_s_field_values() -> None:
    """ID_AA64ISAR0_EL1.AES (bits 7:4) 1 = AES, 2 = AES+PMULL; .ATOMIC (23:20) 2 = LSE; ID_AA64PFR0_EL1.FP (19:16)
    is signed: 0 = FP, 1 = FP+half precision, 0xf = none; .SVE (35:32) 1 = SVE (Arm ARM field encodings)."""
    assert decode({"id_aa64isar0": "0x20", "id_aa64pfr0": "0xff0000"}) == {"aes", "pmull"}
    assert decode({"id_aa64isar0": "0x200010", "id_aa64pfr0": "0x100110000"}) == {
        "aes", "atomics", "fp", "fphp", "asimd", "asimdhp", "sve"}  # fmt: skip
    with pytest.raises(LabError, match="expected"):
        decode({"id_aa64isar0": "0x0"})


def test_idregs_steps_are_compared_on_reader_and_mrs() -> None:
    obs = Observation(2, "idregs", "init", 0, hwcap=(0x800, 0), reader="mrs", mrs=(0x8, 0))
    line = {"step": 2, "op": "idregs", "proc": "init", "result": 0, "stack": ["0x800", "0x0"], "reader": "hwcap",
            "reader_regs": {}, "mrs": {"id_aa64isar0": "0x0", "id_aa64pfr0": "0xff0000", "midr": "0x1"}}  # fmt: skip
    problems = compare([obs], [line])
    assert any("reader model mrs guest hwcap" in p for p in problems)
    assert any("MRS model ['aes'] guest []" in p for p in problems)
