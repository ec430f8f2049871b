"""Run chosen mutants of a mutmut tree against chosen tests, one forked pytest each.

    python3 .ci/mutation-recheck.py MUTANTS_DIR KEYS_FILE -- PYTEST_ARGS...

MUTANTS_DIR is the `mutants/` folder of a `.ci/mutation` run (kept with
GPT2TIE_MUTATION_KEEP=1) with the current tests copied in; KEYS_FILE lists mutant names
(`gpt2tie.views.diff.x__shape__mutmut_8`), one a line. Prints `NAME killed(EXIT)` or
`NAME survived`. The mutated tree comes first on PYTHONPATH, so tests that run gpt2tie in a
subprocess meet the mutant too. Used to check that a new test kills the survivors it was
written for, and to sample mutants mutmut did not reach.
"""

import os
import sys

mutants, keys_file = sys.argv[1], sys.argv[2]
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
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(key, "survived" if code == 0 else f"killed({code})", flush=True)
