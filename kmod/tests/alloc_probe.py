#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""One pass over every operation of vfio_mig_emu that allocates, for the
kernel's fault injection (scripts/guest-fault-inject).

usage: alloc_probe.py [--strict] [--survivors UUID_A UUID_B]
       alloc_probe.py --insmod KO

Creates two fresh instances (profile full), then: open, BAR2 writes to
unbacked pages and read-back, SET_IRQS eventfd, reconfig doorbell, a
stop-copy migration from one to the other (digests compared), a precopy
session, knobs (mem_size on a closed device), FAULT_ADD/CLEAR, DEV_GET
(doit, dump), STATS_GET, events to two listeners; removes the instances.
One line per operation: "probe OP: ok", "probe OP: ENOMEM (what failed)",
or "probe OP: UNCLEAN ..." for what a clean failure must never be: a
kernel-internal errno (>= 512), a success that lost data (digest or
read-back mismatch), an instance left behind by a failed create.

Exit status: 0 every operation succeeded; 1 some failed with a clean
errno (expected while a fault is injected); 2 some failed uncleanly.
--strict: any failure is 2 (the consistency pass after disarming).
--survivors: also migrate A to B, two instances that live through the
whole fault injection run (digests compared).
--insmod: load KO with finit_module() as a task with make-it-fail set (the
fault injection task filter) and print "probe insmod: ok" or its errno;
exit 0 when it loaded, 1 when it failed cleanly, 2 uncleanly.
"""
import errno
import fcntl
import os
import struct
import sys
import time
import uuid as uuidlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402
import nl  # noqa: E402
from nl import string, u32, u64, nest  # noqa: E402

PARENT = '/sys/devices/virtual/vfio_mig_emu/vfio_mig_emu'
SET_IRQS = smoke.io(10)
IRQ_ERR = 3
DATA_EVENTFD, ACTION_TRIGGER = 1 << 2, 1 << 5

results = []


class Unclean(Exception):
    pass


def errname(e):
    return errno.errorcode.get(e, f'errno {e}')


def op(name):
    """Run an operation; record ok, a clean errno, or unclean."""
    def wrap(fn):
        def run(*args):
            t0 = time.monotonic()
            try:
                fn(*args)
            except Unclean as e:
                results.append((name, 'UNCLEAN', str(e)))
            except OSError as e:
                if e.errno is None:
                    results.append((name, 'UNCLEAN', f'no errno: {e}'))
                elif e.errno >= 512:
                    results.append((name, 'UNCLEAN',
                                    f'kernel-internal errno {e.errno}: {e}'))
                else:
                    results.append((name, errname(e.errno), str(e)))
            except AssertionError as e:
                results.append((name, 'UNCLEAN', str(e)))
            else:
                results.append((name, 'ok', ''))
            finally:
                print(f'probe-time {name} {1000 * (time.monotonic() - t0):.0f} ms',
                      file=sys.stderr)
        return run
    return wrap


class Dev:
    """A device fd with its group and container, closed on close()."""
    def __init__(self, u):
        self.d = smoke.Device(u)

    def close(self):
        for fd in (self.d.fd, self.d.group, self.d.container):
            try:
                os.close(fd)
            except OSError:
                pass


def create():
    u = str(uuidlib.uuid4())
    t = f'{PARENT}/mdev_supported_types/vfio_mig_emu-full/create'
    try:
        with open(t, 'w') as f:
            f.write(u)
    except OSError:
        if os.path.exists(f'/sys/bus/mdev/devices/{u}'):
            raise Unclean(f'create failed but {u} exists')
        raise
    return u


def remove(u):
    with open(f'/sys/bus/mdev/devices/{u}/remove', 'w') as f:
        f.write('1')


def pattern(i):
    return bytes([(i * 7 + 1) & 0xff]) * 4096


def insmod(ko):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(ko, os.O_RDONLY | os.O_CLOEXEC)
    # Absent without CONFIG_FAULT_INJECTION (a dry run): a plain load.
    flag = '/proc/self/make-it-fail'
    if os.path.exists(flag):
        with open(flag, 'w') as f:
            f.write('1')
    try:
        ret = libc.syscall(313, fd, b'', 0)  # finit_module
        err = ctypes.get_errno()
    finally:
        if os.path.exists(flag):
            with open(flag, 'w') as f:
                f.write('0')
        os.close(fd)
    if ret == 0:
        results.append(('insmod', 'ok', ''))
    elif err >= 512 or err == 0:
        results.append(('insmod', 'UNCLEAN', f'finit_module errno {err}'))
    else:
        results.append(('insmod', errname(err), os.strerror(err)))
    worst = report(False)
    return 0 if ret == 0 else max(worst, 1)


def survivors_migrate(a, b):
    @op('migrate-survivors')
    def run():
        migrate(a, b, fill=True)
    run()


def migrate(a, b, fill=False):
    """Stop-copy migration of instance a into instance b; digests equal.
    fill: first write a few pages of a (new ones each time)."""
    da = Dev(a)
    try:
        d = da.d
        if fill:
            base = int.from_bytes(os.urandom(1), 'little')
            for i in range(4):
                d.mem_write(((base + 61 * i) % 256) * 4096, os.urandom(4096))
        d.set_state(smoke.STOP)
        digest = d.reg(smoke.REG_DIGEST)
        fd = d.set_state(smoke.STOP_COPY)
        try:
            data, _ = smoke.read_all(fd, 1 << 16)
        finally:
            os.close(fd)
        d.set_state(smoke.STOP)
        d.set_state(smoke.RUNNING)
    finally:
        da.close()
    db = Dev(b)
    try:
        db.d.set_state(smoke.STOP)
        fd = db.d.set_state(smoke.RESUMING)
        try:
            for i in range(0, len(data), 1 << 16):
                os.write(fd, data[i:i + (1 << 16)])
        finally:
            os.close(fd)
        db.d.set_state(smoke.STOP)
        got = db.d.reg(smoke.REG_DIGEST)
        if got != digest:
            raise Unclean(f'migration succeeded with digest {got:#x}, '
                          f'source {digest:#x}')
        db.d.set_state(smoke.RUNNING)
    finally:
        db.close()


def main():
    argv = sys.argv[1:]
    if argv[:1] == ['--insmod'] and len(argv) == 2:
        return insmod(argv[1])
    strict = '--strict' in argv
    survivors = None
    if '--survivors' in argv:
        i = argv.index('--survivors')
        survivors = argv[i + 1:i + 3]
        if len(survivors) != 2:
            sys.exit(__doc__.strip())
    uuids = []
    state = {}

    @op('create')
    def op_create():
        for _ in range(2):
            uuids.append(create())

    op_create()
    if len(uuids) < 2:
        for u in uuids:
            remove(u)
        if survivors:
            survivors_migrate(*survivors)
        return report(strict)
    a, b = uuids

    @op('open')
    def op_open():
        state['a'] = Dev(a)

    op_open()
    da = state.get('a')

    @op('bar2')
    def op_bar2():
        d = da.d
        for i in range(0, 48, 3):
            check_n = d.mem_write(i * 4096, pattern(i))
            if check_n != 4096:
                raise Unclean(f'short BAR2 write {check_n}')
        for i in range(0, 48, 3):
            if d.mem_read(i * 4096, 4096) != pattern(i):
                raise Unclean(f'BAR2 page {i} reads back other data '
                              'after a successful write')

    @op('irq')
    def op_irq():
        efd = os.eventfd(0)
        try:
            hdr = struct.pack('IIIIIi', 24, DATA_EVENTFD | ACTION_TRIGGER,
                              IRQ_ERR, 0, 1, efd)
            fcntl.ioctl(da.d.fd, SET_IRQS, hdr)
            hdr = struct.pack('IIIIIi', 24, DATA_EVENTFD | ACTION_TRIGGER,
                              IRQ_ERR, 0, 1, -1)
            fcntl.ioctl(da.d.fd, SET_IRQS, hdr)
        finally:
            os.close(efd)

    @op('reconfig')
    def op_reconfig():
        before = da.d.reg(smoke.REG_NR_RES)
        da.d.set_reg(smoke.REG_RECONFIG, 20)
        after = da.d.reg(smoke.REG_NR_RES)
        if after != before + 20:
            raise Unclean(f'reconfig doorbell accepted: {before} -> {after} '
                          'resources')

    @op('precopy')
    def op_precopy():
        d = da.d
        d.set_state(smoke.RUNNING)
        fd = d.set_state(smoke.PRE_COPY)
        try:
            smoke.precopy_info(fd)
            smoke.read_all(fd, 4096)
        finally:
            os.close(fd)
        d.set_state(smoke.RUNNING)

    if da:
        for fn in (op_bar2, op_irq, op_reconfig, op_precopy):
            fn()
            try:
                da.d.reset()
            except OSError:
                pass
        da.close()

    @op('migrate')
    def op_migrate():
        migrate(a, b)

    op_migrate()

    g = nl.Genl()

    def mem_size(u):
        """A_MEM_SIZE of u from a DEV_GET dump (the netlink core's skb)."""
        for d in g.emu(nl.CMD_DEV_GET, dump=True):
            if d[nl.A_UUID][0].rstrip(b'\0').decode() == u:
                return nl.get_u(d, nl.A_MEM_SIZE)
        raise Unclean(f'DEV_GET dump lacks {u}')

    @op('knobs')
    def op_knobs():
        # mem_size changes only while the device is closed.  A failed
        # KNOBS_SET must have changed nothing.
        for size in (2 << 20, 1 << 20):
            before = mem_size(b)
            try:
                nl.knobs(g, b, u64(nl.KNOB_MEM_SIZE, size),
                         u32(nl.KNOB_DIRTY_RATE, 0))
            except OSError as e:
                after = mem_size(b)
                if after != before:
                    raise Unclean(f'KNOBS_SET failed ({errname(e.errno)}) '
                                  f'but MEM_SIZE changed {before} -> {after}')
                raise

    @op('fault')
    def op_fault():
        # A failed FAULT_ADD must have added nothing.
        try:
            nl.fault(g, b, u32(nl.F_SITE, nl.SITE_OPEN),
                     u32(nl.F_EFFECT, nl.E_FAIL), u32(nl.F_TRIGGER, nl.T_NTH),
                     u32(nl.F_N, 1000))
        except OSError as e:
            n = len(g.emu(nl.CMD_FAULT_GET, string(nl.A_UUID, b), dump=True))
            if n:
                nl.clear(g, b)
                raise Unclean(f'FAULT_ADD failed ({errname(e.errno)}) but '
                              f'the fault was armed ({n} listed)')
            raise
        nl.clear(g, b)

    @op('dev_get')
    def op_dev_get():
        nl.dev_get(g, a)
        got = sorted(d[nl.A_UUID][0].rstrip(b'\0').decode()
                     for d in g.emu(nl.CMD_DEV_GET, dump=True))
        for u in (a, b):
            if u not in got:
                raise Unclean(f'DEV_GET dump lacks {u}')
        g.emu(nl.CMD_STATS_GET)

    @op('workload')
    def op_workload():
        g.emu(nl.CMD_WORKLOAD, string(nl.A_UUID, b),
              u32(nl.A_WORKLOAD_ACTION, 2), u32(nl.A_WORKLOAD_COUNT, 3))

    @op('events')
    def op_events():
        listeners = [nl.Genl(), nl.Genl()]
        for ev in listeners:
            ev.subscribe('events')
        db = Dev(b)
        try:
            db.d.set_state(smoke.STOP)
            db.d.set_state(smoke.RUNNING)
        finally:
            db.close()
        for i, ev in enumerate(listeners):
            got = ev.events(2.0, want=2)
            states = [e for e in got if e[0] == nl.EV_STATE]
            ev.sk.close()
            if len(states) < 2:
                raise OSError(errno.ENOMEM, f'listener {i} got '
                              f'{len(states)} of 2 state events')

    for fn in (op_knobs, op_fault, op_dev_get, op_workload, op_events):
        fn()

    @op('remove')
    def op_remove():
        for u in uuids:
            remove(u)
            if os.path.exists(f'/sys/bus/mdev/devices/{u}'):
                raise Unclean(f'{u} still there after remove')

    op_remove()
    if survivors:
        survivors_migrate(*survivors)
    return report(strict)


def report(strict):
    worst = 0
    for name, res, what in results:
        print(f'probe {name}: {res}' + (f' ({what})' if what else ''))
        if res == 'UNCLEAN':
            worst = 2
        elif res != 'ok':
            worst = max(worst, 2 if strict else 1)
    return worst


if __name__ == '__main__':
    sys.exit(main())
