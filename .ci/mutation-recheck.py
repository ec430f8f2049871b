"""Run chosen mutants of a mutmut tree against chosen tests, one forked pytest each.

    python3 .ci/mutation-recheck.py MUTANTS_DIR KEYS_FILE -- PYTEST_ARGS...

MUTANTS_DIR is the `mutants/` folder of a `.ci/mutation` run (kept with
GPT2TIE_MUTATION_KEEP=1) with the current tests copied in; KEYS_FILE lists mutant names
(`gpt2tie.views.diff.x__shape__mutmut_8`), one a line. Prints `NAME killed(EXIT)` or
`NAME survived`, or `NAME timeout(…)` past GPT2TIE_RECHECK_TIMEOUT seconds (default 300; a
timeout is a kill, as mutmut counts it). The mutated tree comes first on PYTHONPATH, so
tests that run gpt2tie in a subprocess meet the mutant too. Used to check that a new test
kills the survivors it was written for, and to sample mutants mutmut did not reach.
"""

import os
import signal
import sys
import time

mutants, keys_file = sys.argv[1], sys.argv[2]
TIMEOUT = float(os.environ.get("GPT2TIE_RECHECK_TIMEOUT", "300"))  # seconds per mutant
pytest_args = sys.argv[sys.argv.index("--") + 1 :]
os.chdir(mutants)
sys.path.insert(0, mutants)
os.environ["PYTHONPATH"] = mutants + os.pathsep + os.environ.get("PYTHONPATH", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Imported once here, so that each forked run starts warm.
import pytest  # noqa: E402
import torch  # noqa: E402, F401
import transformers  # noqa: E402, F401

with open(keys_file) as listing:
    keys = [line.strip() for line in listing if line.strip()]
for key in keys:
    pid = os.fork()
    if pid == 0:
        os.environ["MUTANT_UNDER_TEST"] = key
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os._exit(int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *pytest_args])))
    # A mutant that loops forever (`while len(buffer) <= end`) is a timeout, as mutmut counts
    # it: killed.
    deadline = time.monotonic() + TIMEOUT
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print(key, f"timeout({TIMEOUT:g} s)", flush=True)
        continue
    code = os.waitstatus_to_exitcode(done[1])
    print(key, "survived" if code == 0 else f"killed({code})", flush=True)
