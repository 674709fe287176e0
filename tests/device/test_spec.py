"""The device grammar (mpforge.device.spec): every form a ``--device`` value takes, every
refusal, and the round trip to text (how a shard's board reaches the test runner)."""

from __future__ import annotations

import pytest

from mpforge.core.errors import ConfigError, DeviceSpecError
from mpforge.device import spec as sp
from mpforge.device.spec import (
    Auto,
    DeviceSpec,
    DfuSpec,
    ExecPty,
    PlaceSpec,
    ProbeSpec,
    SerialPath,
    SerialUrl,
    parse_device,
    parse_place,
    with_ign_set_control,
)

#: text -> what it parses to -> how it is written back
FORMS: list[tuple[str, DeviceSpec, str]] = [
    ("/dev/ttyACM0", SerialPath("/dev/ttyACM0"), "/dev/ttyACM0"),
    ("COM3", SerialPath("COM3"), "COM3"),
    ("ttyUSB0", SerialPath("ttyUSB0"), "ttyUSB0"),
    ("port:/dev/ttyACM0", SerialPath("/dev/ttyACM0"), "/dev/ttyACM0"),
    ("port:auto", SerialPath("auto"), "port:auto"),  # a port named auto keeps its prefix
    ("port:labgrid:x", SerialPath("labgrid:x"), "port:labgrid:x"),
    ("rfc2217://host:4000", SerialUrl("rfc2217://host:4000"), "rfc2217://host:4000"),
    ("rfc2217://h:5?ign_set_control", SerialUrl("rfc2217://h:5?ign_set_control"), "rfc2217://h:5?ign_set_control"),
    ("socket://127.0.0.1:4000", SerialUrl("socket://127.0.0.1:4000"), "socket://127.0.0.1:4000"),
    ("loop://", SerialUrl("loop://"), "loop://"),
    ("port:rfc2217://h:1", SerialUrl("rfc2217://h:1"), "rfc2217://h:1"),
    ("auto", Auto(), "auto"),
    ("execpty:qemu-system-arm -M netduino2 -serial pty", ExecPty("qemu-system-arm -M netduino2 -serial pty"),
     "execpty:qemu-system-arm -M netduino2 -serial pty"),
    ("execpty:python3 'a b.py'", ExecPty("python3 'a b.py'"), "execpty:python3 'a b.py'"),
    ("labgrid:pyb-2", PlaceSpec(place="pyb-2"), "labgrid:pyb-2"),
    ("labgrid:board=PYBV10_QEMU", PlaceSpec(tags=(("board", "PYBV10_QEMU"),)), "labgrid:board=PYBV10_QEMU"),
    ("labgrid:site=lab1, board=PYBV10", PlaceSpec(tags=(("board", "PYBV10"), ("site", "lab1"))),
     "labgrid:board=PYBV10,site=lab1"),  # tags sorted
    ("dfu:serial=3276375B3033", DfuSpec(serial="3276375B3033"), "dfu:serial=3276375B3033"),
    ("dfu:path=1-2", DfuSpec(path="1-2"), "dfu:path=1-2"),
    ("dfu:serial=a=b", DfuSpec(serial="a=b"), "dfu:serial=a=b"),
    ("probe:066DFF", ProbeSpec("066DFF"), "probe:066DFF"),
    ("probe: 066DFF ", ProbeSpec("066DFF"), "probe:066DFF"),
]


@pytest.mark.parametrize("text, parsed, written", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_parses_to_its_variant_and_is_written_back(text: str, parsed: DeviceSpec, written: str) -> None:
    spec = parse_device(text)
    assert spec == parsed and type(spec) is type(parsed)
    assert str(spec) == written
    assert parse_device(str(spec)) == spec  # written as it parses again


def test_the_variants_say_what_they_are() -> None:
    assert [s.is_farm for s in (PlaceSpec(place="p"), Auto(), SerialPath("/dev/x"))] == [True, False, False]
    assert [s.is_serial for s in (SerialPath("/dev/x"), SerialUrl("loop://"), Auto())] == [True] * 3
    assert not any(s.is_serial for s in (ExecPty("q"), PlaceSpec(place="p"), DfuSpec(path="1"), ProbeSpec("s")))
    assert ExecPty("q").restarts_itself and not SerialPath("/dev/x").restarts_itself
    assert ExecPty("python3 'a b.py' -x").argv == ["python3", "a b.py", "-x"]
    assert SerialUrl("rfc2217://h:5").scheme == "rfc2217"
    assert PlaceSpec(place="pyb-1").filters == {"name": "pyb-1"}
    assert PlaceSpec(tags=(("a", "1"), ("board", "X"))).filters == {"a": "1", "board": "X"}
    hash(parse_device("labgrid:board=X"))  # frozen: usable as a key
    with pytest.raises(AttributeError):
        parse_device("/dev/x").path = "/dev/y"  # type: ignore[misc]


def test_the_command_line_parses_device_once_and_refuses_a_malformed_one_before_anything() -> None:
    from mpforge.cli.framework import device_spec

    assert device_spec(None) is None
    assert device_spec("labgrid:pyb-1") == PlaceSpec(place="pyb-1") and device_spec("labgrid:pyb-1").is_farm
    assert not device_spec("port:labgrid:x").is_farm and device_spec("auto") == Auto()
    for wrong in ("", "labgrid:", "labgrid:b=X"):
        with pytest.raises(DeviceSpecError):
            device_spec(wrong)


#: text -> a piece of the message -> a piece of the hint
REFUSED = [
    ("", "names no board", "/dev/ttyACM0"),
    ("   ", "names no board", "labgrid:PLACE"),
    ("port:", "names no port", "port:PATH"),
    ("port: ", "names no port", "port:PATH"),
    ("execpty:", "no command given", "write the program after execpty:"),
    ("execpty:   ", "no command given", "write the program after execpty:"),
    ("execpty:qemu 'unclosed", "cannot be split into words", "execpty:"),
    ("labgrid:", "names no place and no tags", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid: ", "names no place and no tags", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:Board=X", "'Board=X' is not TAG=VALUE", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:b=X", "'b=X' is not TAG=VALUE", "labgrid:PLACE or labgrid:TAG=VALUE"),  # 2 characters at least
    ("labgrid:board=", "not TAG=VALUE", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:board=a b", "not TAG=VALUE", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:board=X,site", "'site' is not TAG=VALUE", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:board=a,board=b", "tag 'board' given twice", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("labgrid:pyb 2", "'pyb 2' is not a place name", "labgrid:PLACE or labgrid:TAG=VALUE"),
    ("dfu:", "not serial=SERIAL or path=BUS-PORT", "dfu:serial=SERIAL or dfu:path=BUS-PORT"),
    ("dfu:serial=", "not serial=SERIAL or path=BUS-PORT", "dfu:serial=SERIAL"),
    ("dfu:path=", "not serial=SERIAL or path=BUS-PORT", "dfu:path=BUS-PORT"),
    ("dfu:bus=1-2", "not serial=SERIAL or path=BUS-PORT", "dfu:serial=SERIAL"),
    ("dfu:1-2", "not serial=SERIAL or path=BUS-PORT", "dfu:serial=SERIAL"),
    ("probe:", "names no probe", "probe:SERIAL"),
    ("probe:  ", "names no probe", "probe:SERIAL"),
]


@pytest.mark.parametrize("text, says, hint", REFUSED, ids=[repr(r[0]) for r in REFUSED])
def test_a_malformed_spec_is_one_line_naming_it(text: str, says: str, hint: str) -> None:
    with pytest.raises(DeviceSpecError) as caught:
        parse_device(text)
    error = caught.value
    assert isinstance(error, ConfigError) and error.spec == text
    assert error.message.startswith(f"device '{text}': ") and says in error.message
    assert hint in error.hint
    assert "\n" not in error.one_line()


def test_parse_place_takes_only_a_labgrid_place() -> None:
    assert parse_place("labgrid:board=X") == PlaceSpec(tags=(("board", "X"),))
    for other in ("rfc2217://h:1", "/dev/ttyACM0", "auto", "execpty:q"):
        with pytest.raises(DeviceSpecError, match="not a labgrid place") as caught:
            parse_place(other)
        assert "labgrid:PLACE or labgrid:TAG=VALUE" in caught.value.hint
    with pytest.raises(DeviceSpecError, match="given twice"):
        parse_place("labgrid:a1=1,a1=2")


def test_rfc2217_urls_get_ign_set_control_once() -> None:
    assert with_ign_set_control("rfc2217://h:5") == "rfc2217://h:5?ign_set_control"
    assert with_ign_set_control("rfc2217://h:5?timeout=3") == "rfc2217://h:5?timeout=3&ign_set_control"
    assert with_ign_set_control("rfc2217://h:5?ign_set_control") == "rfc2217://h:5?ign_set_control"
    assert with_ign_set_control("socket://h:5") == "socket://h:5"
    assert SerialUrl("rfc2217://h:5").opened_url == "rfc2217://h:5?ign_set_control"
    assert str(SerialUrl("rfc2217://h:5")) == "rfc2217://h:5"  # as the user wrote it


def test_the_grammar_hint_names_every_form() -> None:
    for form in ("/dev/ttyACM0", "auto", "rfc2217://", "execpty:", "labgrid:PLACE", "labgrid:TAG=VALUE",
                 "dfu:serial=", "dfu:path=", "probe:SERIAL"):
        assert form in sp.GRAMMAR
