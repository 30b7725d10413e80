"""Helper process for lease tests: take a lease, say so on stdout, then sleep (or fork and sleep).

usage: python lease_holder.py KEY MODE [--fork] [--job NAME]
"""

import argparse
import os
import sys
import time

from robo.hal import lease

p = argparse.ArgumentParser()
p.add_argument("key")
p.add_argument("mode")
p.add_argument("--fork", action="store_true")
p.add_argument("--job", default=None)
a = p.parse_args()
held = lease.acquire(a.key, a.mode, job=a.job)
child = 0
if a.fork:
    child = os.fork()
    if child == 0:  # the child keeps running after the parent dies
        time.sleep(60)
        os._exit(0)
print(f"ready {os.getpid()} {child}", flush=True)
sys.stdin.readline()  # wait until the test says stop (or kills us)
held.release()
print("released", flush=True)
