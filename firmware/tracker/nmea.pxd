# C types for nmea.py, for CPython only (see docs/nmea.md, "On CPython").
#
# Cython's pure-Python mode compiles nmea.py itself with these declarations, so there is still one
# parser: MicroPython runs nmea.py as it is, CPython imports the compiled module when the set-up
# built it (setup.py) and nmea.py otherwise. The declarations must not change what the parser
# does with any input; tests/test_nmea_compiled.py compares the two on streams, bytes and
# mutated sentences. What they rely on:
#
# * Every number is a 64-bit C integer. The parser reads at most 10 digits of an integer part and
#   at most `digits` (<= 6) of a fraction, so no value or product comes near 2**63. Division and
#   modulo keep Python's rounding (Cython's default).
# * Sentence bytes are read through a `const unsigned char[:]` view (bytes, bytearray or
#   memoryview), bounds-checked like Python indexing.
# * The field starts are a C array of _MAX_SENTENCE + 2 (130) slots, read through a plain
#   pointer, so unchecked: _sentence stores at most 128 fields, and _fields reads only slots it
#   has checked against `nf`.
# * The counters and the state are a C array of _N_STATE (52) slots, also read through a plain
#   pointer: every index is one of nmea.py's slot constants (plus a kind below _N_KINDS or a
#   constellation below _N_SYSTEMS).
# * Helpers and methods become C functions, and Fix and NmeaParser extension types: callers
#   cannot add attributes or reach private names (nothing in the project does), and a subclass
#   cannot override a private method. Helpers the tests call from Python stay `cpdef`.
cimport cython

ctypedef long long i64
ctypedef Py_ssize_t index

cdef index _MAX_SENTENCE
cdef i64 _UERE_CM, _SIGMA_MAX_CM, _DAY_S, _LATE_EVENING_CS, _EARLY_MORNING_CS
cdef index _RMC, _GGA, _GLL, _VTG, _GSA, _GSV, _ZDA, _GST, _GNS, _PROPRIETARY, _UNKNOWN
cdef index _NOISE, _TOO_LONG, _TRUNCATED, _NO_CHECKSUM, _CHECKSUM, _BAD_ADDRESS, _BAD_FIELD
cdef index _FIRST_REJECTION, _N_SYSTEMS, _N_KINDS, _N_COUNTERS
cdef index _SEEN, _VIEW, _KEPT, _QUIET, _NOISY, _OPEN, _TOD, _EP_DAYS, _POS, _BAD, _GST_CM
cdef index _GGA_SATS, _GSA_USED, _KEY, _LAT, _LON, _END_KEY, _CLOSED_TOD, _LAST_DAYS, _LAST_TOD
cdef index _N_STATE
cdef i64 _ONCE, _MODE_NONE, _MODE_MANUAL, _MODE_SIMULATOR
cdef i64 _NAV_SAFE, _NAV_CAUTION, _NAV_UNSAFE, _NAV_NONE
cdef bytes _HEX
cdef dict _KINDS, _TALKERS

# -- numbers ---------------------------------------------------------------------------------
@cython.locals(v=i64, i=index, stop=index, c=i64, p=int, first=bint)
cpdef i64 _udec(const unsigned char[:] b, index s, index e, int digits) except? -1

@cython.locals(v=i64, c=i64)
cpdef i64 _uint(const unsigned char[:] b, index s, index e) except? -1

@cython.locals(s=index, e=index)
cdef i64 _field_udec(const unsigned char[:] b, index* fs, index i, int digits) except? -2

cpdef i64 _sdec(const unsigned char[:] b, index s, index e, int digits) except? -1

@cython.locals(h1=i64, h2=i64, m1=i64, m2=i64, sec=i64)
cdef i64 _time_cs(const unsigned char[:] b, index s, index e) except? -2

@cython.locals(s=index, e=index, hemi=int, dot=index, degrees=i64, minutes_e6=i64, value=i64)
cdef i64 _angle_e6(const unsigned char[:] b, index* fs, index i, i64 limit) except? -1

cpdef i64 _knots_to_cmps(i64 knots_e3)

# days_from_civil stays a Python function: it is public and takes any year; _days calls it
# once per dated sentence.

@cython.locals(last=i64)
cdef i64 _days(i64 y, i64 m, i64 d) except? -1


# -- the fix and the parser ------------------------------------------------------------------
cdef class Fix:
    cdef public i64 t, ms, lat_e6, lon_e6, speed_cmps, course_cdeg, alt_cm, quality, mode
    cdef public i64 sats, hdop_x100, acc_cm, sats_view, snr_max, fix_type, pdop_x100, vdop_x100
    cdef public bint valid
    cpdef clear(self)


cdef class NmeaParser:
    cdef public object on_fix
    cdef public Fix fix
    cdef bytearray _buf
    cdef index _fs[130]
    cdef i64 _st[52]

    # framing
    @cython.locals(i=index, j=index, st="i64*", buf=bytearray, k=index)
    cpdef feed(self, chunk, index n=*)
    @cython.locals(st="i64*")
    cdef _end_line(self)
    @cython.locals(c=int)
    cdef _outside(self, const unsigned char[:] b, index s, index e)
    @cython.locals(st="i64*", buf=bytearray, k=index, size=index, star=index, i=index, c=int,
                   j=index)
    cdef index _resume(self, const unsigned char[:] b, index n) except? -2

    # sentences
    @cython.locals(st="i64*", fs="index*", lim=index, nf=index, x=i64, i=index, c=int, hi=int,
                   lo=int, a=index, kind=index, system=index)
    cdef index _sentence(self, const unsigned char[:] b, index s, index n) except? -2

    # epochs
    @cython.locals(st="i64*", k=i64, i=index, fix=Fix)
    cdef bint _begin(self, index kind, i64 tod, bint pos=*, bint usable=*) except -1
    @cython.locals(st="i64*", fix=Fix, tod=i64, days=i64, sats=i64, total=i64, i=index, mode=i64)
    cdef _emit(self)

    # fields
    @cython.locals(st="i64*")
    cdef bint _position(self, const unsigned char[:] b, index* fs, index i) except -1
    @cython.locals(st="i64*", fix=Fix, tod=i64, status=int, s=index, e=index, days=i64, yy=i64,
                   speed=i64, course=i64, mode=i64, nav=i64, pos=bint, usable=bint, quality=i64,
                   sats=i64, hdop=i64, alt=i64, ic=index, ik=index, ih=index, fix_type=i64,
                   used=i64, i=index, pdop=i64, vdop=i64, c=i64, valid=bint, total=i64,
                   num=i64, in_view=i64, best=i64, snr=i64, slat=i64, slon=i64, scale=i64,
                   sq=i64, x=i64, y=i64)
    cdef _fields(self, const unsigned char[:] b, index* fs, index nf, index kind, index system)
