"""The compiled NMEA parser against its own source run as plain Python.

On CPython, ``tracker.nmea`` is normally the module ``setup.py`` compiles from
``firmware/tracker/nmea.py`` with the C types in ``nmea.pxd``, so every other NMEA test on CPython
tests the compiled module, and the MicroPython tests run the source. These tests tie the two
together: the compiled module must be built from the current source, and must give the same
fixes, field for field, and the same counts as the source under CPython. The inputs are clean and
noisy streams, arbitrary bytes and mutations, fed whole and in pieces.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotspots.bench.nmea import is_compiled, load_plain_parser
from simulators import nmea_out
from tracker import nmea

# The parser-feeding helper of the portable tests (tests/firmware/nmea_feed.py).
sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))
from nmea_feed import parse

SOURCE = Path(__file__).resolve().parent.parent / "firmware" / "tracker" / "nmea.py"
DATA = Path(__file__).resolve().parent / "data" / "nmea"

pytestmark = pytest.mark.skipif(
    not is_compiled(nmea), reason="tracker.nmea is not compiled here (the set-up's C build "
    "failed or did not run), so CPython runs nmea.py itself: nothing to compare")


plain = load_plain_parser()


def run(module, data: bytes, chunk: int = 0) -> tuple[list[tuple], dict]:
    """Every fix (as a tuple) and the counts, feeding ``data`` whole or ``chunk`` at a time."""
    fixes, parser = parse(data, chunk, module.NmeaParser)
    return [fix.as_tuple() for fix in fixes], parser.stats()


def assert_same(data: bytes, chunk: int = 0) -> tuple[list[tuple], dict]:
    compiled = run(nmea, data, chunk)
    assert compiled == run(plain, data, chunk)
    return compiled


def outcome(function, *args):
    """What a call returns, or the type of what it raises."""
    try:
        return function(*args)
    except Exception as error:  # noqa: BLE001 - the exception type is the outcome compared
        return type(error)


def test_the_compiled_module_is_built_from_the_current_source() -> None:
    built = Path(nmea.__file__).stat().st_mtime
    for source in (SOURCE, SOURCE.with_suffix(".pxd")):
        assert built >= source.stat().st_mtime, (
            f"{Path(nmea.__file__).name} is older than {source.name}: rebuild it with `make setup`")
    assert type(nmea.NmeaParser(print).fix) is nmea.Fix


def test_an_m8_stream_gives_the_same_fixes_whole_and_in_pieces() -> None:
    data = b"".join(nmea_out.m8_stream(seconds=300))
    fixes, stats = assert_same(data)
    assert len(fixes) == 300 and stats["sentences"]["GSV"] > 0
    assert_same(data, 4096)
    assert_same(data, 7)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.nmea")), ids=lambda p: p.name)
def test_recorded_receivers_give_the_same_fixes_and_counts(path: Path) -> None:
    data = path.read_bytes()
    assert_same(data)
    assert_same(data, 1)


SAMPLE = b"".join(nmea_out.m8_stream(seconds=4))
SENTENCES = [line for line in SAMPLE.split(b"\r\n") if line]
#: At least this many examples, more under HYPOTHESIS_PROFILE=explore.
EXAMPLES = max(200, settings.default.max_examples)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=97))
def test_arbitrary_bytes_give_the_same_counts(data: bytes, chunk: int) -> None:
    assert_same(data)
    assert_same(data, chunk)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(SAMPLE) - 1),
                          st.binary(min_size=1, max_size=3)), max_size=10),
       st.integers(min_value=1, max_value=80))
def test_mutated_streams_give_the_same_fixes_and_counts(patches, chunk: int) -> None:
    data = bytearray(SAMPLE)
    for at, blob in patches:
        data[at : at + len(blob)] = blob
    assert_same(bytes(data))
    assert_same(bytes(data), chunk)


def with_checksum(body: bytes) -> bytes:
    return b"$%s*%s\r\n" % (body, nmea_out.checksum(body).encode())


#: Field values that reach the handlers' checks: empty, numbers, letters, odd bytes.
FIELD = st.one_of(st.just(b""), st.text("0123456789.-", max_size=7).map(str.encode),
                  st.sampled_from([b"A", b"V", b"N", b"S", b"E", b"W", b"M", b"K", b"T", b"7"]),
                  st.binary(max_size=4).filter(lambda v: not set(v) & set(b"$*,\r\n")))


@st.composite
def edited_sentences(draw) -> bytes:
    """Real sentences with fields replaced, inserted, deleted or cut, and a correct checksum, so
    that every handler's field checks run (a wrong checksum stops a sentence before them)."""
    out = []
    for line in draw(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=12)):
        fields = line[1 : line.index(b"*")].split(b",")
        for _ in range(draw(st.integers(0, 3))):
            k = draw(st.integers(1, len(fields)))
            edit = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
            if edit == "replace" and k < len(fields):
                fields[k] = draw(FIELD)
            elif edit == "insert":
                fields.insert(k, draw(FIELD))
            elif edit == "delete" and k < len(fields):
                del fields[k]
            elif edit == "cut":
                fields = fields[:k]
        out.append(with_checksum(b",".join(fields)))
    return b"".join(out)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edited_sentences(), st.integers(min_value=1, max_value=200))
def test_edited_fields_give_the_same_fixes_and_counts(data: bytes, chunk: int) -> None:
    assert_same(data)
    assert_same(data, chunk)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=12).map(bytes), st.integers(min_value=0, max_value=6))
def test_number_readers_agree_on_any_bytes(raw: bytes, places: int) -> None:
    for name in ("_udec", "_sdec"):
        assert outcome(getattr(nmea, name), raw, 0, len(raw), places) == outcome(
            getattr(plain, name), raw, 0, len(raw), places)
    assert outcome(nmea._uint, raw, 0, len(raw)) == outcome(plain._uint, raw, 0, len(raw))
    assert outcome(nmea.fixed, raw, places) == outcome(plain.fixed, raw, places)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=-9999, max_value=9999), st.integers(min_value=1, max_value=12),
       st.integers(min_value=1, max_value=31), st.integers(min_value=0, max_value=999_999_999))
def test_date_and_speed_arithmetic_agree(year: int, month: int, day: int, knots_e3: int) -> None:
    assert nmea.days_from_civil(year, month, day) == plain.days_from_civil(year, month, day)
    assert nmea._knots_to_cmps(knots_e3) == plain._knots_to_cmps(knots_e3)


def test_lines_of_any_type_and_a_length_limit_are_taken_alike() -> None:
    line = nmea_out.rmc(1_795_000_000, 51.5, -0.12, 1.5, 90.0)

    def take(module) -> tuple[list[tuple], dict]:
        fixes: list[tuple] = []
        parser = module.NmeaParser(lambda fix: fixes.append(fix.as_tuple()))
        parser.feed_line(line.decode())
        parser.feed_line(memoryview(line))
        parser.feed(bytearray(line + b"$GPXXX,garbage"), len(line))
        parser.flush()
        return fixes, parser.stats()

    fixes, stats = take(nmea)
    assert (fixes, stats) == take(plain)
    assert stats == {"sentences": {"RMC": 3}, "rejected": {}}


def test_an_error_in_on_fix_reaches_the_caller() -> None:
    data = b"".join(nmea_out.m8_stream(seconds=2))

    def refuse(fix):
        raise RuntimeError("storage full")

    for module in (nmea, plain):
        parser = module.NmeaParser(refuse)
        with pytest.raises(RuntimeError, match="storage full"):
            parser.feed(data)
