#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest race test of one vfio_mig_emu instance.

usage: stress.py UUID SECONDS

Threads race state changes and resets, data fd reads, writes, precopy
info, poll and close, and region writes/doorbells.  Only the errnos the
module documents are tolerated; the kernel log is checked by the caller.
"""
import errno
import os
import queue
import random
import select
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402

OK_ERRNOS = {errno.EINVAL, errno.EBUSY, errno.ENODEV, errno.ENOMSG,
             errno.EBADF, errno.ENOSPC, errno.ENOTTY}


def run(uuid, seconds):
    dev = smoke.Device(uuid)
    flags = dev.mig_flags()
    states = [smoke.STOP, smoke.RUNNING, smoke.STOP_COPY, smoke.RESUMING]
    if flags & smoke.MIG_P2P:
        states.append(smoke.RUNNING_P2P)
    if flags & smoke.MIG_PRE_COPY:
        states.append(smoke.PRE_COPY)
        dev.feature(smoke.FEAT_SET | 12, b'')
    if flags & smoke.MIG_PRE_COPY and flags & smoke.MIG_P2P:
        states.append(smoke.PRE_COPY_P2P)
    fds = queue.Queue()
    stop = time.monotonic() + seconds
    errors = []
    counts = {'set': 0, 'fd': 0, 'read': 0, 'write': 0, 'mem': 0}

    def guard(fn):
        def body():
            rnd = random.Random(hash(fn.__name__))
            while time.monotonic() < stop and not errors:
                try:
                    fn(rnd)
                except OSError as e:
                    if e.errno not in OK_ERRNOS:
                        errors.append(f'{fn.__name__}: {e}')
                except Exception as e:  # noqa: BLE001
                    errors.append(f'{fn.__name__}: {e!r}')
        return body

    def fsm(rnd):
        if rnd.random() < 0.05:
            dev.reset()
            return
        fd = dev.set_state(rnd.choice(states))
        counts['set'] += 1
        if fd >= 0:
            counts['fd'] += 1
            fds.put(fd)

    def data(rnd):
        try:
            fd = fds.get(timeout=0.1)
        except queue.Empty:
            return
        try:
            for _ in range(rnd.randrange(1, 20)):
                op = rnd.randrange(4)
                try:
                    if op == 0:
                        os.read(fd, rnd.choice([1, 31, 4096, 70000]))
                        counts['read'] += 1
                    elif op == 1:
                        os.write(fd, os.urandom(rnd.randrange(1, 200)))
                        counts['write'] += 1
                    elif op == 2:
                        smoke.precopy_info(fd)
                    else:
                        p = select.poll()
                        p.register(fd, select.POLLIN)
                        p.poll(1)
                except OSError as e:
                    if e.errno not in OK_ERRNOS:
                        raise
        finally:
            os.close(fd)

    def mem(rnd):
        op = rnd.randrange(4)
        if op == 0:
            dev.mem_write(rnd.randrange(0, 1 << 20, 4096), os.urandom(4096))
        elif op == 1:
            dev.set_reg(smoke.REG_DIRTY, rnd.randrange(1, 8))
        elif op == 2:
            dev.set_reg(smoke.REG_RECONFIG, 1)
        else:
            dev.reg(smoke.REG_DIGEST)
        counts['mem'] += 1

    threads = [threading.Thread(target=guard(f))
               for f in (fsm, fsm, data, data, mem, mem)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not fds.empty():
        os.close(fds.get())
    dev.reset()
    smoke.check(dev.state() == smoke.RUNNING, 'RUNNING after final reset')
    os.close(dev.fd)
    print(f'stress: {counts}')
    if errors:
        raise AssertionError('; '.join(errors[:5]))


if __name__ == '__main__':
    run(sys.argv[1], float(sys.argv[2]))
