"""Run the portable firmware tests on the MicroPython unix port (no pytest there).

Usage: ``micropython tests/firmware/mprun.py tests/firmware/test_wire.py [...]`` with the firmware
on ``MICROPYPATH``. Every module-level function whose name starts with ``test_`` is called
without arguments; the last line printed is ``N passed, M failed``. Exits 1 on any failure.
``tests/test_firmware_on_micropython.py`` runs this for each portable test file.
"""

import sys


def run_file(path):
    slash = path.rfind("/")
    folder = path[:slash] if slash >= 0 else "."
    name = path[slash + 1 :]
    if name.endswith(".py"):
        name = name[:-3]
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = __import__(name)
    passed = 0
    failed = 0
    for attr in sorted(dir(module)):
        if not attr.startswith("test_"):
            continue
        test = getattr(module, attr)
        if not callable(test):
            continue
        try:
            test()
        except Exception as e:  # report and go on: one failure must not hide the others
            failed += 1
            print("FAIL %s::%s" % (path, attr))
            sys.print_exception(e)
        else:
            passed += 1
    return passed, failed


def main(paths):
    passed = 0
    failed = 0
    for path in paths:
        p, f = run_file(path)
        passed += p
        failed += f
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)
