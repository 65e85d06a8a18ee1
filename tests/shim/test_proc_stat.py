"""src/shim/proc_stat.h, the one /proc/self/stat reader of hwcap-exec and the kernel lab's guest probe, via a
C driver. Expected fields come from splitting the same text in Python by proc(5)'s numbering (fields counted
from 1, the comm is field 2 and may hold spaces and parentheses)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hwcap_exec_support import compile_driver

#: proc(5) numbers of startcode, endcode, startstack, start_data, end_data, start_brk, arg_start, arg_end,
#: env_start, env_end: the fields PR_SET_MM_MAP needs, in the order the driver prints them.
LAYOUT_FIELDS = (26, 27, 28, 45, 46, 47, 48, 49, 50, 51)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("driver") / "proc_stat_driver"
    return compile_driver(Path(__file__).with_name("proc_stat_driver.c"), out)


def parse(driver: Path, tmp_path: Path, text: str) -> list[int] | None:
    stat = tmp_path / "stat"
    stat.write_text(text)
    line = subprocess.run([str(driver), str(stat)], capture_output=True, text=True, check=True).stdout.split()
    return None if line == ["err"] else [int(x) for x in line[1:11]]


def fields_after_comm(text: str) -> list[str]:
    """Fields 3.. of a stat line: everything after the last ')'."""
    return text[text.rindex(")") + 1 :].split()


@pytest.fixture
def real_stat() -> str:
    return Path("/proc/self/stat").read_text()


def expected(text: str) -> list[int]:
    rest = fields_after_comm(text)
    return [int(rest[n - 3]) for n in LAYOUT_FIELDS]


def test_reads_the_layout_fields_of_a_real_stat_line(driver: Path, tmp_path: Path, real_stat: str) -> None:
    got = parse(driver, tmp_path, real_stat)
    assert got == expected(real_stat)
    assert got is not None and got[0] < got[1]  # start_code < end_code: a real layout, not zeros


def test_a_comm_with_spaces_and_parentheses_does_not_shift_the_fields(
    driver: Path, tmp_path: Path, real_stat: str
) -> None:
    pid = real_stat.split(" ", 1)[0]
    odd = f"{pid} (a) (b c){real_stat[real_stat.rindex(')') + 1 :]}"
    assert fields_after_comm(odd) == fields_after_comm(real_stat)
    assert parse(driver, tmp_path, odd) == expected(real_stat)


def test_a_line_that_ends_before_env_end_is_refused(driver: Path, tmp_path: Path, real_stat: str) -> None:
    head = real_stat[: real_stat.rindex(")") + 1]
    short = head + " " + " ".join(fields_after_comm(real_stat)[: 51 - 3]) + "\n"  # fields 3..50
    assert parse(driver, tmp_path, short) is None
    assert parse(driver, tmp_path, "no comm here\n") is None


def test_a_field_that_is_not_a_decimal_reads_as_zero(driver: Path, tmp_path: Path, real_stat: str) -> None:
    head = real_stat[: real_stat.rindex(")") + 1]
    rest = fields_after_comm(real_stat)
    rest[26 - 3] = "12x"  # startcode
    rest[27 - 3] = "-" + rest[27 - 3]  # endcode
    want = expected(real_stat)
    assert parse(driver, tmp_path, head + " " + " ".join(rest) + "\n") == [0, 0, *want[2:]]


def test_its_own_layout_is_plausible_and_brk_comes_from_the_kernel(driver: Path) -> None:
    line = subprocess.run([str(driver)], capture_output=True, text=True, check=True).stdout.split()
    assert line[0] == "ok"
    start_code, end_code, _stack, start_data, end_data, start_brk, *_args, brk = (int(x) for x in line[1:])
    assert 0 < start_code < end_code and start_data <= end_data and 0 < start_brk <= brk
