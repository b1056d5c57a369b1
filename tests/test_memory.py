import platform
import subprocess
import sys
import threading

import pytest

from digitrec.memory import release_freed_memory

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim and mallopt are glibc's")


@glibc
def test_freed_memory_is_handed_back_after_big_work():
    # Mid-sized blocks freed in a thread stay in its malloc arena while a few survivors pin it
    # (as a request's results do), until trimmed: here about 180 MB.
    keep = []

    def churn():
        blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~200 MB, each below mmap's threshold
        keep.extend(blocks[::50])
        del blocks

    t = threading.Thread(target=churn)
    t.start()
    t.join()
    before = _rss_mb()
    release_freed_memory()
    assert _rss_mb() < before - 100


# Five training steps of a convolution on a line reader's batch (96 lines, 28 x 200: ~35 MB of
# activations), after one to warm up; the page faults they cost counted.
STEPS = """
import resource, sys, torch
from digitrec.memory import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
conv, x = torch.nn.Conv2d(1, 16, 3, padding=1), torch.rand(96, 1, 28, 200)
conv(x).sum().backward()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    conv(x).sum().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


@glibc
def test_a_training_process_keeps_what_a_step_frees_for_the_next():
    # By default each step's big blocks are handed back and their pages faulted in again (~30,000 a
    # step); kept, the next step reuses them. In fresh processes: the setting is process-wide.
    faults = {how: int(subprocess.run([sys.executable, "-c", STEPS, how], capture_output=True, text=True,
                                      check=True).stdout) for how in ("default", "keep")}
    assert faults["default"] > 5 * 10_000 and faults["keep"] < faults["default"] / 5, faults


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
