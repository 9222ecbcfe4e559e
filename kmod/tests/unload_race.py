#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest race test: unloading vfio_mig_emu against everything userspace holds.

usage: unload_race.py [--rounds N] [--seed S] [--qemu PATH]... STAGE...

STAGE is one of:
  fds      rmmod against open device fds and migration data fds (a saving
           session with a thread blocked in poll(), a resuming session with
           a thread writing, a thread looping STOP_COPY reads): refused while
           any of them is open, even a data fd whose device fd is closed;
           the blocked threads are woken with an errno; once everything is
           closed the module unloads (with its instances) and reloads.
  netlink  rmmod against generic netlink commands in flight from several
           threads (DEV_GET dumps, KNOBS_SET, FAULT_ADD/CLEAR, QUIRKS_SET,
           event subscribers): a half-read dump holds the module, commands
           return a reply or an errno, the module unloads while they run.
  remove   mdev remove with fds open (with and without a REQ eventfd: the
           device request reaches the eventfd; remove waits for the device
           fd, not for a data fd that outlives it) and against instance
           creation, netlink commands on the instance removed and rmmod.
  qemu     a QEMU (each --qemu) holding the device: rmmod refused, mdev
           remove sends the device request, QEMU's answer is recorded, QEMU
           is killed, remove and rmmod complete.

The module is (re)loaded with scripts/guest-load-module (VFIOMIG_KO names
the .ko).  Every wait is bounded and names what hung.  The kernel log is
checked by the caller (scripts/guest-unload-race).
"""
import argparse
import ctypes
import errno
import fcntl
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nl  # noqa: E402
import smoke  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MOD = 'vfio_mig_emu'
PARENT = f'/sys/devices/virtual/{MOD}/{MOD}'
MDEVS = '/sys/bus/mdev/devices'
SYS_DELETE_MODULE = 176     # x86_64
CMD_QUIRKS_SET, A_QUIRKS, QUIRKS_ALL = 14, 27, (1 << 22) - 1
REQ_IRQ_INDEX = 4
IRQ_SET_DATA_EVENTFD, IRQ_SET_ACTION_TRIGGER = 1 << 2, 1 << 5
DEVICE_SET_IRQS = smoke.io(10)
# delete_module while something holds a reference: EWOULDBLOCK (== EAGAIN);
# EBUSY while the module is still coming up or going away.
REFUSED = {errno.EAGAIN, errno.EBUSY}
# What a netlink command may answer when its device or the whole family
# goes away under it (or the fault table is full, or a knob is refused
# while a session is open).  EPROTONOSUPPORT: a dump started while the
# module is going (netlink_dump_start()'s try_module_get() fails).
NL_OK = {errno.ENOENT, errno.ENODEV, errno.EINVAL, errno.EBUSY, errno.ENOSPC,
         errno.EAGAIN, errno.EINTR, errno.ERANGE, errno.ECONNREFUSED,
         errno.EPROTONOSUPPORT}

libc = ctypes.CDLL(None, use_errno=True)
T0 = time.monotonic()


def log(msg):
    print(f'unload-race: [{time.monotonic() - T0:7.1f}s] {msg}', flush=True)


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def loaded():
    return os.path.isdir(f'/sys/module/{MOD}')


def wait_for(cond, timeout, what, step=0.05):
    """Polls @cond until true; raises Fail naming @what after @timeout s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise Fail(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(step)


def delete_module():
    """delete_module(2) with O_NONBLOCK: 0 or the errno."""
    r = libc.syscall(SYS_DELETE_MODULE, MOD.encode(), os.O_NONBLOCK)
    return 0 if r == 0 else ctypes.get_errno()


def run(cmd, timeout=60):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Fail(f'{" ".join(cmd)} hung for more than {timeout} s') from e


_deps_loaded = [False]


def load():
    """Loads the module: its dependencies once (guest-load-module), then
    insmod alone (nothing here unloads vfio or mdev)."""
    ko = os.environ.get('VFIOMIG_KO', os.path.join(TOP, 'kmod', f'{MOD}.ko'))
    if _deps_loaded[0]:
        r = run(['insmod', ko], 120)
    else:
        r = run([os.path.join(TOP, 'scripts', 'guest-load-module'), ko], 120)
    check(r.returncode == 0, f'loading {ko} failed: {r.stderr.strip()}')
    _deps_loaded[0] = True
    check(loaded(), f'{MOD} not loaded after guest-load-module')
    wait_for(lambda: os.path.isdir(f'{PARENT}/mdev_supported_types'), 10,
             'the mdev parent after insmod')


def unload(timeout=30):
    """Unloads the module (it must go within @timeout s)."""
    end = time.monotonic() + timeout
    while loaded():
        err = delete_module()
        if err == 0 or err == errno.ENOENT:
            break
        check(err in REFUSED, f'delete_module: unexpected errno {err}')
        if time.monotonic() > end:
            raise Fail(f'rmmod {MOD} still refused (errno {err}) {timeout} s '
                       f'after everything was released: something leaks a '
                       f'module reference (refcnt '
                       f'{read(f"/sys/module/{MOD}/refcnt")})')
        time.sleep(0.1)
    check(not os.path.exists(PARENT), 'mdev parent survived rmmod')


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f'<{e.strerror}>'


def counters():
    return {c: int(read(f'{PARENT}/stats/{c}'))
            for c in ('live_files', 'live_buffers', 'live_eventfds')}


_uuid_n = [0]


def new_uuid(tag):
    _uuid_n[0] += 1
    return f'75720000-{tag:04x}-4000-8000-{_uuid_n[0]:012x}'


def create(prof='full', tag=0):
    u = new_uuid(tag)
    with open(f'{PARENT}/mdev_supported_types/{MOD}-{prof}/create', 'w') as f:
        f.write(u)
    return u


def remove_path(u):
    return f'{MDEVS}/{u}/remove'


class Unloader:
    """Hammers rmmod: delete_module(2) with O_NONBLOCK and rmmod(8).

    mode 'held': every attempt must be refused; 'free': an attempt may
    succeed, after which the thread stops; 'pause': no attempt.
    """

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.mode = 'pause'
        self.stop = False
        self.errors = []
        self.attempts = {'held': 0, 'free': 0}
        self.unloaded = threading.Event()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self.body, daemon=True)
        self.t.start()

    def set(self, mode):
        with self.lock:
            self.mode = mode
            if mode == 'free':
                self.unloaded.clear()

    def attempt(self):
        # modprobe -r is no use here: the module is insmod'ed from the
        # tree, not in modules.dep, so modprobe fails with "not found"
        # before reaching delete_module(2), the call rmmod makes.
        if self.rnd.random() < 0.75:
            err = delete_module()
            return err == 0, f'delete_module errno {err}', err in REFUSED
        r = run(['rmmod', MOD])
        out = (r.stderr or r.stdout).strip()
        # "in use" when rmmod saw the refcount, EAGAIN's text otherwise.
        return r.returncode == 0, f'rmmod: {out}', \
            'in use' in out or 'temporarily unavailable' in out

    def body(self):
        while not self.stop:
            with self.lock:
                mode = self.mode
                if mode != 'pause' and loaded():
                    ok, what, refused = self.attempt()
                    self.attempts[mode] += 1
                    if mode == 'held' and ok:
                        self.errors.append(
                            f'rmmod succeeded while the module was held ({what})')
                    elif not ok and not refused and loaded():
                        self.errors.append(f'rmmod refused oddly: {what}')
                    if ok and mode == 'free':
                        self.mode = 'pause'
                        self.unloaded.set()
            time.sleep(self.rnd.uniform(0.001, 0.02))

    def check(self):
        if self.errors:
            raise Fail('; '.join(self.errors[:3]))

    def close(self):
        self.stop = True
        self.t.join(30)


class Threads:
    """Worker threads that loop until stopped; errors are collected."""

    def __init__(self):
        self.stop = threading.Event()
        self.errors = []
        self.threads = []
        self.counts = {}

    def add(self, name, fn):
        self.counts[name] = 0

        def body():
            try:
                while not self.stop.is_set():
                    fn()
                    self.counts[name] += 1
            except Exception as e:  # noqa: BLE001
                self.errors.append(f'{name}: {e!r}')
        t = threading.Thread(target=body, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def join(self, timeout):
        self.stop.set()
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
            if t.is_alive():
                raise Fail(f'thread {t.name} still running {timeout:.0f} s '
                           f'after it was told to stop (a syscall hung)')
        if self.errors:
            raise Fail('; '.join(self.errors[:3]))


def sized_genl():
    g = nl.Genl()
    g.sk.settimeout(60)
    return g


def nl_call(state, fn):
    """Runs @fn(genl) on the thread's socket, reopening it when the family
    came and went; the errnos of a vanishing device or family are fine."""
    try:
        if state.get('g') is None:
            # Resolve the family only when it can be there: each
            # GETFAMILY of a missing family makes the kernel run modprobe
            # (the module's MODULE_ALIAS_GENL_FAMILY), which under TCG
            # costs far more than the call and starves the test.
            if not loaded():
                time.sleep(0.05)
                return
            state['g'] = sized_genl()
        fn(state['g'])
    except nl.NlError as e:
        if e.errno not in NL_OK:
            raise Fail(f'netlink errno {e.errno}: {e}') from e
        state['g'] = None   # the family or the device is gone
        time.sleep(0.02)
    except socket.timeout as e:
        raise Fail('a netlink command got no reply within 60 s') from e
    except OSError as e:
        if e.errno not in NL_OK:
            raise
        state['g'] = None
        time.sleep(0.02)


def uuid_attr(u):
    return nl.string(nl.A_UUID, u)


def nl_workers(ts, uuids, rnd_seed):
    """Netlink threads on the devices in the list @uuids (it may change)."""
    def pick(rnd):
        return rnd.choice(uuids) if uuids else '00000000-0000-4000-8000-0'

    def worker(name, op, pause=0.0):
        state = {'rnd': random.Random(f'{rnd_seed}{name}')}

        def body():
            nl_call(state, lambda g: op(g, state['rnd']))
            time.sleep(pause)
        ts.add(name, body)

    worker('dump', lambda g, r: g.emu(nl.CMD_DEV_GET, dump=True))
    worker('knobs', lambda g, r: nl.knobs(
        g, pick(r), nl.u32(nl.KNOB_DIRTY_RATE, r.choice((0, 0, 50))),
        nl.nest(nl.KNOB_ARC_DELAY, nl.u32(nl.A_FROM_STATE, nl.ANY),
                nl.u32(nl.A_TO_STATE, nl.ANY),
                nl.u32(nl.KNOB_DELAY_US, r.choice((0, 0, 2000))))))

    def faults(g, r):
        u = pick(r)
        if r.random() < 0.3:
            g.emu(nl.CMD_FAULT_CLEAR, uuid_attr(u))
            return
        nl.fault(g, u, nl.u32(nl.F_SITE, r.choice((nl.SITE_READ,
                                                   nl.SITE_WRITE,
                                                   nl.SITE_SET_STATE))),
                 nl.u32(nl.F_EFFECT, nl.E_DELAY),
                 nl.u32(nl.F_DELAY_US, 1000),
                 nl.u32(nl.F_TRIGGER, nl.T_EVERY_NTH), nl.u32(nl.F_N, 3))
    worker('faults', faults)
    # Every quirk on: one kernel log line per quirk (slow on a serial
    # console), with the device looked up and referenced.
    worker('quirks', lambda g, r: g.emu(
        CMD_QUIRKS_SET, uuid_attr(pick(r)),
        nl.u64(A_QUIRKS, r.choice((QUIRKS_ALL, 0)))), 0.05)
    worker('stats', lambda g, r: g.emu(nl.CMD_STATS_GET))

    sub = {}

    def events():
        try:
            if sub.get('g') is None:
                if not loaded():
                    time.sleep(0.05)
                    return
                sub['g'] = sized_genl()
                sub['g'].subscribe('events')
            sub['g'].events(0.2)
        except OSError as e:
            if e.errno not in NL_OK:
                raise
            sub['g'] = None
            time.sleep(0.2)
    ts.add('events', events)


# ---- stage: fds ---------------------------------------------------------

def stage_fds(rnd, unl, rounds):
    for rnd_i in range(rounds):
        if not loaded():
            load()
        u = [create('full', 1) for _ in range(3)]
        d = [smoke.Device(x) for x in u]
        ts = Threads()
        # A saving session, a thread blocked in poll() on it.
        save_fd = d[0].set_state(smoke.PRE_COPY)
        check(save_fd >= 0, 'PRE_COPY gave no data fd')
        smoke.read_all(save_fd, 65536)
        woke = {}

        def poller():
            p = select.poll()
            p.register(save_fd, select.POLLIN)
            while not ts.stop.is_set():
                ev = p.poll(200)
                if ev and ev[0][1] & select.POLLNVAL:
                    woke['poll'] = 'closed'     # closed under it by main()
                    return
                if ev and ev[0][1] & (select.POLLHUP | select.POLLERR):
                    woke['poll'] = 'POLLHUP' if ev[0][1] & select.POLLHUP \
                        else 'POLLERR'
                    return
                if ev:
                    try:
                        smoke.read_all(save_fd, 4096)
                    except OSError as e:
                        if e.errno == errno.EBADF:
                            woke['poll'] = 'closed'
                            return
                        check(e.errno == errno.ENODEV,
                              f'read after wake: errno {e.errno}')
                        woke['poll'] = 'ENODEV'
                        return

        def poller_guard():
            try:
                poller()
            except Exception as e:  # noqa: BLE001
                woke['error'] = repr(e)
        pt = threading.Thread(target=poller_guard, daemon=True)
        pt.start()
        # A resuming session, a thread writing its stream.
        d[1].set_state(smoke.STOP)
        res_fd = d[1].set_state(smoke.RESUMING)
        hdr = stream_header(d[2])

        def writer():
            try:
                os.write(res_fd, hdr[:rnd.randint(1, len(hdr))])
                time.sleep(0.01)
            except OSError as e:
                check(e.errno in (errno.ENODEV, errno.EINVAL),
                      f'write on the resuming fd: errno {e.errno}')
                if e.errno == errno.ENODEV:
                    time.sleep(0.05)
        ts.add('writer', writer)
        # A thread looping saving sessions on the third device, its reads
        # slowed by a DELAY fault (100 ms every second read: a thread is
        # in read() when the device fd closes).
        g = sized_genl()
        nl.fault(g, u[2], nl.u32(nl.F_SITE, nl.SITE_READ),
                 nl.u32(nl.F_EFFECT, nl.E_DELAY),
                 nl.u32(nl.F_DELAY_US, 100000),
                 nl.u32(nl.F_TRIGGER, nl.T_EVERY_NTH), nl.u32(nl.F_N, 2))
        g.sk.close()
        loop = {}

        def saver():
            try:
                d[2].set_state(smoke.STOP)
                fd = d[2].set_state(smoke.STOP_COPY)
                loop['fd'] = fd
                try:
                    smoke.read_all(fd, 8192)
                finally:
                    loop['fd'] = None
                    os.close(fd)
                d[2].set_state(smoke.RUNNING)
            except OSError as e:
                # EBADF/ENOTTY: the device fd was closed (and its number
                # maybe reused) under the loop.
                check(e.errno in (errno.ENODEV, errno.EBADF, errno.EINVAL,
                                  errno.ENOTTY),
                      f'saving loop: errno {e.errno}')
                time.sleep(0.05)
        ts.add('saver', saver)

        unl.set('held')
        time.sleep(rnd.uniform(1.0, 2.0))
        unl.check()
        # Release in a random order; a data fd alone still holds the module.
        # The last holder is closed either with rmmod paused (then the live
        # counters must be 0) or while rmmod is being retried (racing the
        # last fput).
        order = rnd.choice(('devices-first', 'data-first'))
        last_race = rnd.random() < 0.5
        if order == 'devices-first':
            d[0].close()
            wait_for(lambda: 'poll' in woke, 20,
                     'poll() on a saving fd to wake after its device fd closed')
            d[1].close()
            d[2].close()    # with the saving loop running
            ts.join(30)
            time.sleep(0.3)
            check(loaded(), 'module gone with data fds still open')
            unl.check()
            os.close(save_fd)
            unl.set('free' if last_race else 'pause')
            os.close(res_fd)
        else:
            ts.join(30)
            os.close(res_fd)
            os.close(save_fd)
            pt.join(20)
            check(not pt.is_alive(),
                  'poll() thread did not return after its data fd closed')
            d[0].close()
            d[1].close()
            unl.set('free' if last_race else 'pause')
            d[2].close()
        pt.join(20)
        check(not pt.is_alive(), 'poll() thread still blocked')
        check('error' not in woke, f'poll() thread: {woke.get("error")}')
        if not last_race:
            time.sleep(0.05)
            unl.check()
            c = counters()
            check(c['live_files'] == 0 and c['live_buffers'] == 0,
                  f'after closing every fd: {c}')
            unl.set('free')
        if not unl.unloaded.wait(30):
            raise Fail('rmmod did not succeed within 30 s of the last fd '
                       f'closing (refcnt {read(f"/sys/module/{MOD}/refcnt")})')
        unl.check()
        check(not loaded(), 'module loaded after rmmod returned 0')
        check(not any(os.path.exists(f'{MDEVS}/{x}') for x in u),
              'an instance survived rmmod')
        order += ', last fd closed against rmmod' if last_race else ''
        log(f'fds round {rnd_i + 1}: {order}, poll thread {woke.get("poll", "stopped")}, '
            f'{ts.counts}')
        load()


def stream_header(dev):
    """The first bytes of a real stream (a STOP_COPY of @dev), or zeros."""
    dev.set_state(smoke.STOP)
    fd = dev.set_state(smoke.STOP_COPY)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    dev.set_state(smoke.RUNNING)
    return data


# Let Device close its fds (smoke.Device keeps container, group and fd).
def _dev_close(self):
    for fd in (self.fd, self.group, self.container):
        try:
            os.close(fd)
        except OSError:
            pass


smoke.Device.close = _dev_close


# ---- stage: netlink ------------------------------------------------------

def half_read_dump(ndev):
    """A dump left half read (tiny receive buffer) holds the module."""
    g = sized_genl()
    g.sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    g.seq += 1
    body = struct.pack('BBH', nl.CMD_DEV_GET, 1, 0)
    msg = struct.pack('IHHII', 16 + len(body), g.family,
                      nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_DUMP,
                      g.seq, 0)
    g.sk.send(msg + body)
    time.sleep(0.3)
    err = delete_module()
    refused = err in REFUSED
    # Read it to its end: the dump completes and drops its reference.
    n, done = 0, False
    g.sk.settimeout(30)
    while not done:
        data = g.sk.recv(65536)
        while data:
            ln, typ, _, _, _ = struct.unpack_from('IHHII', data)
            if typ in (nl.NLMSG_DONE, nl.NLMSG_ERROR):
                done = True
            elif typ == g.family:
                n += 1
            data = data[(ln + 3) & ~3:]
    g.sk.close()
    check(n == ndev, f'half-read dump: {n} devices, want {ndev}')
    return refused, err


def stage_netlink(rnd, unl, rounds):
    for rnd_i in range(rounds):
        if not loaded():
            load()
        uuids = [create('full', 2) for _ in range(12)]
        refused, err = half_read_dump(len(uuids))
        check(loaded(), f'rmmod succeeded (errno {err}) with a dump in progress')
        check(refused, f'rmmod with a dump in progress: errno {err}')
        ts = Threads()
        nl_workers(ts, uuids, rnd.random())
        # A device user producing events and sessions, opened and closed.
        dev_u = uuids[0]

        def user():
            try:
                dv = smoke.Device(dev_u)
            except OSError as e:
                check(e.errno in (errno.ENOENT, errno.ENODEV, errno.EBUSY),
                      f'open: errno {e.errno}')
                time.sleep(0.05)
                return
            try:
                dv.set_state(smoke.STOP)
                dv.set_state(smoke.RUNNING)
            except OSError as e:
                check(e.errno in (errno.ENODEV, errno.EINVAL, errno.EBUSY),
                      f'user: errno {e.errno}')
            finally:
                dv.close()
            time.sleep(0.02)
        ts.add('user', user)
        time.sleep(rnd.uniform(0.5, 1.5))
        unl.set('free')
        if not unl.unloaded.wait(60):
            raise Fail('rmmod never succeeded in 60 s with only netlink '
                       'commands and short device opens in flight')
        time.sleep(rnd.uniform(0.2, 0.6))   # the threads meet a gone family
        load()
        uuids[:] = [create('full', 2) for _ in range(3)]
        dev_u = uuids[0]
        time.sleep(rnd.uniform(0.5, 1.0))   # and the new one
        unl.set('free')
        if not unl.unloaded.wait(60):
            raise Fail('second rmmod never succeeded in 60 s')
        ts.join(90)
        unl.check()
        log(f'netlink round {rnd_i + 1}: {ts.counts}')
        load()


# ---- stage: remove -------------------------------------------------------

class Remover:
    """echo 1 > remove in a thread (it blocks while the device is open)."""

    def __init__(self, u):
        self.u, self.err, self.done = u, None, threading.Event()
        threading.Thread(target=self.body, daemon=True).start()

    def body(self):
        try:
            with open(remove_path(self.u), 'w') as f:
                f.write('1')
        except OSError as e:
            self.err = e.errno
        self.done.set()

    def wait(self, timeout, what):
        if not self.done.wait(timeout):
            raise Fail(f'mdev remove of {self.u} still blocked {timeout} s '
                       f'after {what}')
        return self.err


def register_req(dev):
    efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
    buf = struct.pack('IIIIIi', 24, IRQ_SET_DATA_EVENTFD |
                      IRQ_SET_ACTION_TRIGGER, REQ_IRQ_INDEX, 0, 1, efd)
    fcntl.ioctl(dev.fd, DEVICE_SET_IRQS, buf)
    return efd


def stage_remove(rnd, unl, rounds):
    for rnd_i in range(rounds):
        if not loaded():
            load()
        # 1. Held with a REQ eventfd: the request arrives, remove waits.
        u1, u2 = create('full', 3), create('full', 3)
        d1, d2 = smoke.Device(u1), smoke.Device(u2)
        efd = register_req(d1)
        c = counters()
        check(c['live_eventfds'] == 1, f'REQ eventfd not counted: {c}')
        data2 = d2.set_state(smoke.PRE_COPY)
        unl.set('held')
        r1 = Remover(u1)
        p = select.poll()
        p.register(efd, select.POLLIN)
        t = time.monotonic()
        check(p.poll(20000), f'no device request on the REQ eventfd of {u1} '
              f'within 20 s of mdev remove')
        req_s = time.monotonic() - t
        check(struct.unpack('Q', os.read(efd, 8))[0] >= 1, 'eventfd count')
        time.sleep(0.3)
        check(not r1.done.is_set(),
              f'mdev remove of {u1} returned (errno {r1.err}) with the '
              f'device fd open')
        # 2. Held without REQ, a data fd open: remove waits for the device
        # fd only; the data fd outlives the instance and still holds the
        # module.
        r2 = Remover(u2)
        time.sleep(0.3)
        check(not r2.done.is_set(), f'remove of {u2} did not wait')
        unl.check()
        d1.close()
        check(r1.wait(20, 'its device fd closed') is None,
              f'remove of {u1}: errno {r1.err}')
        os.close(efd)
        d2.close()
        check(r2.wait(20, 'its device fd closed') is None,
              f'remove of {u2}: errno {r2.err}')
        check(not os.path.exists(f'{MDEVS}/{u1}') and
              not os.path.exists(f'{MDEVS}/{u2}'), 'instance after remove')
        smoke.expect_errno(errno.ENODEV, os.read, data2, 10)
        time.sleep(0.3)
        unl.check()
        check(loaded(), 'module unloaded under an open data fd')
        unl.set('pause')
        unl.check()
        os.close(data2)
        c = counters()
        check(not any(c.values()), f'after removing both instances: {c}')
        # 3. Netlink commands on the very instance being removed: each
        # looks the device up, holds a reference and runs on while the
        # instance (and its mdev) goes away.
        g = sized_genl()
        pairs = {'replied': 0, 'ENODEV': 0}
        for _ in range(8):
            x = create('full', 6)
            go = threading.Event()

            def hit(x=x):
                go.wait(5)
                for cmd, attrs in ((CMD_QUIRKS_SET,
                                    nl.u64(A_QUIRKS, QUIRKS_ALL)),
                                   (nl.CMD_DEV_GET, b''),
                                   (nl.CMD_KNOBS_SET, nl.nest(
                                       nl.A_KNOBS,
                                       nl.u32(nl.KNOB_DIRTY_RATE, 10)))):
                    try:
                        g.emu(cmd, uuid_attr(x), attrs)
                        pairs['replied'] += 1
                    except nl.NlError as e:
                        check(e.errno == errno.ENODEV,
                              f'netlink on a removed instance: {e}')
                        pairs['ENODEV'] += 1
            th = threading.Thread(target=hit, daemon=True)
            th.start()
            go.set()
            time.sleep(rnd.uniform(0, 0.01))
            with open(remove_path(x), 'w') as f:
                f.write('1')
            th.join(60)
            check(not th.is_alive(), f'netlink on {x} hung after its remove')
        g.sk.close()
        # 4. Create and remove instances in a loop, netlink on them, rmmod.
        uuids = []
        ts = Threads()
        nl_workers(ts, uuids, rnd.random())
        churn = {'created': 0, 'removed': 0}

        def creator():
            try:
                x = create(rnd.choice(('full', 'p2p')), 4)
                uuids.append(x)
                churn['created'] += 1
                if len(uuids) > 6:
                    y = uuids.pop(0)
                    with open(remove_path(y), 'w') as f:
                        f.write('1')
                    churn['removed'] += 1
            except OSError as e:
                check(e.errno in (errno.ENOENT, errno.ENODEV, errno.EEXIST,
                                  errno.ENOSPC, errno.EBUSY),
                      f'create/remove: errno {e.errno}')
                time.sleep(0.05)
        ts.add('creator', creator)
        ts.add('creator2', creator)
        time.sleep(rnd.uniform(1.5, 2.5))
        unl.set('free')
        if not unl.unloaded.wait(60):
            raise Fail('rmmod never succeeded in 60 s against instance '
                       'creation and removal')
        time.sleep(0.3)
        ts.join(90)
        unl.check()
        log(f'remove round {rnd_i + 1}: request after {req_s * 1000:.0f} ms, '
            f'on the instance removed {pairs}, churn {churn}, {ts.counts}')
        load()


# ---- stage: qemu ---------------------------------------------------------

def stage_qemu(rnd, unl, qemus, workdir, logdir):
    for qi, qemu in enumerate(qemus):
        if not loaded():
            load()
        u = create('full', 5)
        ver = run([qemu, '--version']).stdout.splitlines()
        name = ver[0] if ver else qemu
        logf = os.path.join(logdir, f'unload-race-qemu-{qi}.log')
        qmp = os.path.join(workdir, f'qemu-{qi}.qmp')
        cmd = [qemu, '-machine', 'q35', '-m', '128', '-nodefaults',
               '-display', 'none', '-accel', 'tcg', '-S',
               '-qmp', f'unix:{qmp},server=on,wait=off',
               '-device', f'vfio-pci,sysfsdev={MDEVS}/{u},'
               'enable-migration=on']
        out = open(logf, 'w')
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            g = sized_genl()

            def opened():
                check(proc.poll() is None, f'{name} exited with '
                      f'{proc.returncode}: {read(logf)[-500:]}')
                d = nl.dev_get(g, u)
                return nl.get_u(d, nl.A_DEVICE_OPEN) == 1
            t = time.monotonic()
            wait_for(opened, 120, f'{name} to open {u}', 0.2)
            open_s = time.monotonic() - t
            unl.set('held')
            time.sleep(1.5)
            unl.check()
            # What QEMU does with the device request is what is recorded;
            # while it holds the device rmmod stays refused.
            unl.set('pause')
            r = Remover(u)
            # The vfio core asks at once, then every 10 s.
            t = time.monotonic()
            r.done.wait(12)
            alive = proc.poll() is None
            if r.done.is_set():
                answer = (f'released the device after '
                          f'{time.monotonic() - t:.1f} s: remove completed')
            else:
                answer = 'kept the device: remove still waiting after 12 s'
                check(alive, f'{name} exited but remove did not complete')
                unl.set('held')
                time.sleep(1.0)
                unl.check()
                unl.set('pause')
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            check(r.wait(30, f'{name} was killed') is None,
                  f'remove of {u}: errno {r.err}')
            unl.check()
            c = counters()
            check(not any(c.values()), f'after QEMU and remove: {c}')
            g.sk.close()
            unl.set('free')
            if not unl.unloaded.wait(30):
                raise Fail(f'rmmod did not succeed within 30 s of {name} '
                           'being killed')
            qlog = read(logf).strip().replace('\n', ' | ')
            log(f'qemu {name}: opened the device after {open_s:.1f} s; on '
                f'mdev remove it {answer} (still running: {alive}); its '
                f'output: {qlog[:800]}')
            load()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            out.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rounds', type=int, default=2)
    ap.add_argument('--seed', type=int, default=int(time.time()))
    ap.add_argument('--qemu', action='append', default=[])
    ap.add_argument('--workdir', default='/tmp',
                    help='QMP sockets (not on 9p)')
    ap.add_argument('--logdir', default='/tmp', help="QEMU's output")
    ap.add_argument('stages', nargs='+',
                    choices=('fds', 'netlink', 'remove', 'qemu'))
    a = ap.parse_args()
    log(f'seed {a.seed}, {a.rounds} round(s) of {" ".join(a.stages)}')
    rnd = random.Random(a.seed)
    unl = Unloader(a.seed)
    took = {}
    try:
        if not loaded():
            load()
        for st in a.stages:
            t = time.monotonic()
            if st == 'fds':
                stage_fds(rnd, unl, a.rounds)
            elif st == 'netlink':
                stage_netlink(rnd, unl, a.rounds)
            elif st == 'remove':
                stage_remove(rnd, unl, a.rounds)
            elif st == 'qemu':
                if not a.qemu:
                    log('qemu: skipped: no --qemu given')
                    continue
                stage_qemu(rnd, unl, a.qemu, a.workdir, a.logdir)
            took[st] = time.monotonic() - t
        unl.set('pause')
        unl.check()
    except (Fail, OSError, AssertionError) as e:
        log(f'FAIL: {e}')
        return 1
    finally:
        unl.close()
    log('attempts refused while held: {held}, attempts while free: {free}'
        .format(**unl.attempts))
    log('PASS: ' + ', '.join(f'{k} {v:.1f} s' for k, v in took.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
