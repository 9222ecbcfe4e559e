#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest test of the vfio_mig_emu generic netlink family (raw sockets).

usage: nl.py UUID_FULL [OTHER_UUID...]

Every command with a plain NLM_F_REQUEST|NLM_F_ACK request, bad inputs
(errno + extack), every fault effect seen through the vfio uAPI, events in
order, knobs (arc delay, load cost, resource bytes, mem size, dirty rate).
The real client and suite are userspace/ and harness/ (C++).
"""
import errno
import fcntl
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402
from smoke import check, expect_errno  # noqa: E402

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_EXT_ACK = 1, 11
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_DUMP = 1, 2, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_ACK_TLVS = 0x200
GENL_ID_CTRL, CTRL_CMD_GETFAMILY = 0x10, 3
NESTED = 0x8000

# uAPI (kmod/include/uapi/vfio_mig_emu.h)
(CMD_DEV_GET, CMD_KNOBS_SET, CMD_FAULT_ADD, CMD_FAULT_GET, CMD_FAULT_CLEAR,
 CMD_WORKLOAD, CMD_COUNTERS_RESET, CMD_STATS_GET, EV_STATE, EV_SESSION,
 EV_FAULT, EV_CRITICAL, EV_RESET) = range(1, 14)
(A_PAD, A_UUID, A_PROFILE, A_STATE, A_MEM_SIZE, A_DEVICE_OPEN, A_SESSIONS,
 A_DIGEST, A_NR_RESOURCES, A_COUNTERS, A_PRECOPY, A_KNOBS, A_FAULT,
 A_FAULT_ID, A_WORKLOAD_ACTION, A_WORKLOAD_COUNT, A_EVENT_SEQ,
 A_TIMESTAMP_NS, A_FROM_STATE, A_TO_STATE, A_ERRNO, A_SESSION_KIND,
 A_SESSION_OPEN, A_BYTES, A_STATS) = range(1, 26)
(CNT_TRANSITIONS, CNT_TRANSITION_ERRORS, CNT_BYTES_SAVED, CNT_BYTES_LOADED,
 CNT_PRECOPY_QUERIES, CNT_FAULTS_HIT, CNT_RESETS) = range(2, 9)
PRECOPY_STOP_COPY_BYTES = 4
(KNOB_ARC_DELAY, KNOB_DELAY_US, KNOB_LOAD_NS_PER_KIB, KNOB_LOAD_US_PER_RES,
 KNOB_MEM_SIZE, KNOB_RESOURCE_BYTES, KNOB_DIRTY_RATE,
 KNOB_REINIT_POLICY) = range(2, 10)
(F_SITE, F_FROM, F_TO, F_TRIGGER, F_N, F_PPM, F_SEED, F_EFFECT, F_ERRNO,
 F_DELAY_US, F_CALLS, F_HITS, F_ID) = range(2, 15)
(SITE_SET_STATE, SITE_READ, SITE_WRITE, SITE_PRECOPY_INFO, SITE_DATA_SIZE,
 SITE_RESET, SITE_OPEN) = range(1, 8)
T_NTH, T_EVERY_NTH, T_FIRST_N, T_RANDOM = range(1, 5)
(E_FAIL, E_FAIL_TO_ERROR, E_DELAY, E_SHORT_IO, E_CORRUPT,
 E_GARBAGE_SIZE) = range(1, 7)
ANY = 0xffffffff
ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, \
    PRE_COPY_P2P = range(8)


def attr(t, data):
    hdr = struct.pack('HH', 4 + len(data), t)
    return hdr + data + b'\0' * (-len(data) % 4)


def u32(t, v):
    return attr(t, struct.pack('I', v))


def u64(t, v):
    return attr(t, struct.pack('Q', v))


def string(t, s):
    return attr(t, s.encode() + b'\0')


def nest(t, *parts):
    return attr(t | NESTED, b''.join(parts))


def parse(data):
    out = {}
    while len(data) >= 4:
        ln, t = struct.unpack_from('HH', data)
        if ln < 4:
            break
        out.setdefault(t & 0x3fff, []).append(data[4:ln])
        data = data[(ln + 3) & ~3:]
    return out


def get_u(attrs, t):
    v = attrs[t][0]
    return int.from_bytes(v, 'little')


class NlError(OSError):
    def __init__(self, err, msg, offs):
        super().__init__(err, f'{os.strerror(err)}: {msg!r} (offset {offs})')
        self.msg = msg


class Genl:
    def __init__(self):
        self.sk = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                NETLINK_GENERIC)
        self.sk.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        self.sk.bind((0, 0))
        self.seq = 1
        reply = self.request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                             string(2, 'vfio_mig_emu'), version=1)[0]
        self.family = get_u(reply, 1)
        self.version = get_u(reply, 3)
        self.groups = {}
        for g in parse(reply[7][0]).values():
            grp = parse(g[0])
            self.groups[grp[1][0].rstrip(b'\0').decode()] = get_u(grp, 2)

    def subscribe(self, name):
        self.sk.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
                           self.groups[name])

    def request(self, family, cmd, payload=b'', flags=0, version=1):
        self.seq += 1
        body = struct.pack('BBH', cmd, version, 0) + payload
        msg = struct.pack('IHHII', 16 + len(body), family,
                          NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sk.send(msg + body)
        replies = []
        while True:
            data = self.sk.recv(65536)
            while data:
                ln, typ, fl, seq, _ = struct.unpack_from('IHHII', data)
                m, data = data[16:ln], data[(ln + 3) & ~3:]
                if seq != self.seq:
                    continue
                if typ in (NLMSG_ERROR, NLMSG_DONE):
                    err = struct.unpack_from('i', m)[0]
                    if err:
                        tlv = b''
                        if fl & NLM_F_ACK_TLVS:
                            olen = struct.unpack_from('I', m, 4)[0]
                            skip = 4 + (16 if fl & 0x100 else olen)
                            tlv = m[skip:] if typ == NLMSG_ERROR else m[4:]
                        t = parse(tlv)
                        text = t[1][0].rstrip(b'\0').decode() if 1 in t else ''
                        offs = get_u(t, 2) if 2 in t else None
                        raise NlError(-err, text, offs)
                    if typ == NLMSG_ERROR or not fl & NLM_F_MULTI:
                        return replies
                    if typ == NLMSG_DONE:
                        return replies
                    continue
                replies.append(parse(m[4:]))
                if not fl & NLM_F_MULTI and typ != NLMSG_DONE:
                    pass

    def emu(self, cmd, *parts, dump=False):
        return self.request(self.family, cmd, b''.join(parts),
                            NLM_F_DUMP if dump else 0)

    def events(self, timeout=2.0, want=None):
        out = []
        self.sk.settimeout(timeout)
        try:
            while want is None or len(out) < want:
                data = self.sk.recv(65536)
                while data:
                    ln, typ, _, _, _ = struct.unpack_from('IHHII', data)
                    m, data = data[16:ln], data[(ln + 3) & ~3:]
                    if typ == self.family:
                        out.append((m[0], parse(m[4:])))
        except socket.timeout:
            pass
        finally:
            self.sk.settimeout(None)
        return out


def expect_nl(err, fn, *args, text=None):
    try:
        fn(*args)
    except NlError as e:
        check(e.errno == err, f'errno {e.errno} ({e.msg}), want {err}')
        check(text is None or text in e.msg, f'extack {e.msg!r} lacks {text!r}')
        print(f'nl:   refused as expected: {e}')
        return e
    raise AssertionError(f'succeeded, want errno {err}')


def dev_get(nl, uuid):
    return nl.emu(CMD_DEV_GET, string(A_UUID, uuid))[0]


def counters(nl, uuid):
    c = parse(dev_get(nl, uuid)[A_COUNTERS][0])
    return {k: get_u(c, k) for k in c if k > 1}


def fault(nl, uuid, *parts):
    r = nl.emu(CMD_FAULT_ADD, string(A_UUID, uuid), nest(A_FAULT, *parts))
    return get_u(r[0], A_FAULT_ID)


def clear(nl, uuid):
    nl.emu(CMD_FAULT_CLEAR, string(A_UUID, uuid))


def knobs(nl, uuid, *parts):
    r = nl.emu(CMD_KNOBS_SET, string(A_UUID, uuid), nest(A_KNOBS, *parts))
    return parse(r[0][A_KNOBS][0])


def test_basics(nl, uuids):
    check(nl.version == 1, 'family version')
    check('events' in nl.groups, 'events group')
    st = parse(nl.emu(CMD_STATS_GET)[0][A_STATS][0])
    check(get_u(st, 1) == len(uuids), f'STATS devices {get_u(st, 1)}')
    devs = nl.emu(CMD_DEV_GET, dump=True)
    got = sorted(d[A_UUID][0].rstrip(b'\0').decode() for d in devs)
    check(got == sorted(uuids), f'dump lists {got}')
    d = dev_get(nl, uuids[0])
    check(get_u(d, A_STATE) == RUNNING and get_u(d, A_PROFILE) == 0,
          'DEV_GET state/profile')
    check(get_u(d, A_MEM_SIZE) == 1 << 20 and get_u(d, A_DEVICE_OPEN) == 0,
          'DEV_GET mem size, not open')
    pc = parse(d[A_PRECOPY][0])
    check(get_u(pc, PRECOPY_STOP_COPY_BYTES) > 0, 'stop copy bytes')
    u = uuids[0]
    # Bad input: errno and extack.
    expect_nl(errno.EINVAL, nl.emu, CMD_DEV_GET, text='VFIO_MIG_EMU_A_UUID')
    expect_nl(errno.EINVAL, nl.emu, CMD_DEV_GET, string(A_UUID, 'nope'),
              text='not a uuid')
    expect_nl(errno.ENODEV, nl.emu, CMD_DEV_GET,
              string(A_UUID, '00000000-0000-0000-0000-000000000000'),
              text='no vfio_mig_emu device')
    expect_nl(errno.EINVAL, nl.emu, CMD_DEV_GET, string(A_UUID, u),
              u32(A_STATE, 1))
    expect_nl(errno.EINVAL, nl.emu, CMD_DEV_GET, string(A_UUID, u),
              u32(200, 1))
    expect_nl(errno.EINVAL, nl.emu, CMD_DEV_GET, string(A_UUID, u + 'x'))
    expect_nl(errno.EINVAL, nl.emu, CMD_STATS_GET, string(A_UUID, u))
    expect_nl(errno.EINVAL, knobs, nl, u, u64(KNOB_MEM_SIZE, 5000),
              text='multiple')
    expect_nl(errno.ERANGE, knobs, nl, u, u32(KNOB_DIRTY_RATE, 1 << 30))
    expect_nl(errno.EINVAL, knobs, nl, u,
              nest(KNOB_ARC_DELAY, u32(A_FROM_STATE, 9),
                   u32(KNOB_DELAY_US, 1)), text='from state 9')
    expect_nl(errno.EINVAL, knobs, nl, u, nest(KNOB_ARC_DELAY))
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_SET_STATE),
              u32(F_EFFECT, E_SHORT_IO), text='not possible')
    expect_nl(errno.ERANGE, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_ERRNO, 0))
    expect_nl(errno.ERANGE, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_ERRNO, 4096))
    # ERESTARTSYS (512): kernel-internal, never for userspace
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_ERRNO, 512), text='kernel-internal')
    expect_nl(errno.ERANGE, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_TRIGGER, T_NTH), u32(F_N, 0))
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_FROM, 2), text='SET_STATE only')
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_READ))
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_OPEN),
              u32(F_EFFECT, E_FAIL), u32(F_HITS, 1))
    expect_nl(errno.EINVAL, fault, nl, u, u32(F_SITE, SITE_READ),
              u32(F_EFFECT, E_FAIL), u32(F_TRIGGER, T_RANDOM))
    expect_nl(errno.ENOENT, nl.emu, CMD_FAULT_CLEAR, string(A_UUID, u),
              u32(A_FAULT_ID, 999))
    expect_nl(errno.ERANGE, nl.emu, CMD_WORKLOAD, string(A_UUID, u),
              u32(A_WORKLOAD_ACTION, 1), u32(A_WORKLOAD_COUNT, 70000))
    expect_nl(errno.ENOSPC, nl.emu, CMD_WORKLOAD, string(A_UUID, u),
              u32(A_WORKLOAD_ACTION, 2), u32(A_WORKLOAD_COUNT, 5000))
    for i in range(64):
        fault(nl, u, u32(F_SITE, SITE_OPEN), u32(F_EFFECT, E_DELAY),
              u32(F_DELAY_US, 1), u32(F_TRIGGER, T_NTH), u32(F_N, 1000))
    expect_nl(errno.ENOSPC, fault, nl, u, u32(F_SITE, SITE_OPEN),
              u32(F_EFFECT, E_FAIL))
    check(len(nl.emu(CMD_FAULT_GET, string(A_UUID, u), dump=True)) == 64,
          'FAULT_GET dump lists 64')
    check(len(nl.emu(CMD_FAULT_GET, string(A_UUID, u))[0][A_FAULT]) == 64,
          'FAULT_GET doit lists 64')
    clear(nl, u)
    check(not nl.emu(CMD_FAULT_GET, string(A_UUID, u), dump=True),
          'faults cleared')


def test_unprivileged(uuid):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            nl = Genl()
            dev_get(nl, uuid)
            nl.emu(CMD_FAULT_GET, string(A_UUID, uuid), dump=True)
            for cmd, parts in ((CMD_KNOBS_SET, [nest(A_KNOBS)]),
                               (CMD_COUNTERS_RESET, []),
                               (CMD_FAULT_CLEAR, []),
                               (CMD_WORKLOAD, [u32(A_WORKLOAD_ACTION, 1),
                                               u32(A_WORKLOAD_COUNT, 1)])):
                expect_nl(errno.EPERM, nl.emu, cmd, string(A_UUID, uuid),
                          *parts)
            code = 0
        finally:
            os._exit(code)
    check(os.waitpid(pid, 0)[1] == 0, 'unprivileged caller refused')


def save_stream(dev):
    dev.set_state(STOP)
    fd = dev.set_state(STOP_COPY)
    data, why = smoke.read_all(fd, 1 << 16)
    os.close(fd)
    dev.set_state(STOP)
    return data


def test_faults_and_events(nl, u):
    ev = Genl()
    ev.subscribe('events')
    dev = smoke.Device(u)
    nl.emu(CMD_COUNTERS_RESET, string(A_UUID, u))
    ev.events(0.2)

    # SET_STATE FAIL on one arc, first time only: the path stops there.
    fid = fault(nl, u, u32(F_SITE, SITE_SET_STATE), u32(F_TO, STOP),
                u32(F_TRIGGER, T_NTH), u32(F_N, 1),
                u32(F_EFFECT, E_FAIL), u32(F_ERRNO, errno.EXDEV))
    expect_errno(errno.EXDEV, dev.set_state, STOP)
    check(dev.state() == RUNNING_P2P, 'FAIL stops on the path')
    dev.set_state(STOP)
    dev.set_state(RUNNING)
    f = parse(nl.emu(CMD_FAULT_GET, string(A_UUID, u),
                     u32(A_FAULT_ID, fid))[0][A_FAULT][0])
    check(get_u(f, F_HITS) == 1 and get_u(f, F_CALLS) == 2, 'fault counts')
    evs = ev.events(0.5)
    kinds = [(c, get_u(a, A_FROM_STATE) if A_FROM_STATE in a else None,
              get_u(a, A_TO_STATE) if A_TO_STATE in a else None,
              get_u(a, A_ERRNO) if A_ERRNO in a else None) for c, a in evs]
    print('nl: events', kinds)
    check(kinds == [(EV_STATE, RUNNING, RUNNING_P2P, 0),
                    (EV_FAULT, RUNNING_P2P, STOP, None),
                    (EV_STATE, RUNNING_P2P, STOP, errno.EXDEV),
                    (EV_STATE, RUNNING_P2P, STOP, 0),
                    (EV_STATE, STOP, RUNNING_P2P, 0),
                    (EV_STATE, RUNNING_P2P, RUNNING, 0)], 'event order')
    seqs = [get_u(a, A_EVENT_SEQ) for _, a in evs]
    check(seqs == list(range(seqs[0], seqs[0] + len(seqs))), f'seq {seqs}')
    clear(nl, u)

    # FAIL_TO_ERROR: ERROR until reset.
    fault(nl, u, u32(F_SITE, SITE_SET_STATE), u32(F_EFFECT, E_FAIL_TO_ERROR),
          u32(F_ERRNO, errno.EPROTO))
    expect_errno(errno.EPROTO, dev.set_state, STOP)
    check(dev.state() == ERROR, 'FAIL_TO_ERROR goes ERROR')
    expect_errno(errno.EINVAL, dev.set_state, RUNNING)
    clear(nl, u)
    dev.reset()
    check(dev.state() == RUNNING, 'reset leaves ERROR')

    # DELAY on an arc, and the arc delay knob.
    fault(nl, u, u32(F_SITE, SITE_SET_STATE), u32(F_EFFECT, E_DELAY),
          u32(F_DELAY_US, 200000), u32(F_TO, STOP))
    t = time.monotonic()
    dev.set_state(STOP)
    check(time.monotonic() - t >= 0.2, 'DELAY fault delays')
    dev.set_state(RUNNING)
    clear(nl, u)
    k = knobs(nl, u, nest(KNOB_ARC_DELAY, u32(A_FROM_STATE, STOP),
                          u32(A_TO_STATE, RUNNING_P2P),
                          u32(KNOB_DELAY_US, 150000)))
    check(len(k[KNOB_ARC_DELAY]) == 1, 'reply lists the arc delay')
    dev.set_state(STOP)
    t = time.monotonic()
    dev.set_state(RUNNING)
    check(time.monotonic() - t >= 0.15, 'arc delay knob')
    knobs(nl, u, nest(KNOB_ARC_DELAY, u32(KNOB_DELAY_US, 0)))

    # Data path: READ short, corrupt, fail; DATA_SIZE / PRECOPY garbage.
    dev.set_reg(smoke.REG_DIRTY, 10)
    good = save_stream(dev)
    dev.set_state(RUNNING)
    fault(nl, u, u32(F_SITE, SITE_READ), u32(F_EFFECT, E_SHORT_IO))
    dev.set_state(STOP)
    fd = dev.set_state(STOP_COPY)
    check(len(os.read(fd, 100)) == 50, 'SHORT_IO read')
    check(len(os.read(fd, 1)) == 1, 'SHORT_IO at least 1')
    clear(nl, u)
    fault(nl, u, u32(F_SITE, SITE_READ), u32(F_EFFECT, E_FAIL),
          u32(F_ERRNO, errno.ENOSPC), u32(F_TRIGGER, T_FIRST_N), u32(F_N, 2))
    expect_errno(errno.ENOSPC, os.read, fd, 10)
    expect_errno(errno.ENOSPC, os.read, fd, 10)
    check(len(os.read(fd, 10)) == 10, 'FIRST_N over')
    clear(nl, u)
    os.close(fd)
    dev.set_state(STOP)
    dev.set_state(RUNNING)
    fault(nl, u, u32(F_SITE, SITE_READ), u32(F_EFFECT, E_CORRUPT))
    bad = save_stream(dev)
    clear(nl, u)
    check(len(bad) == len(good) and bad != good, 'CORRUPT read flips bytes')
    fault(nl, u, u32(F_SITE, SITE_DATA_SIZE), u32(F_EFFECT, E_GARBAGE_SIZE))
    check(dev.data_size() == (1 << 64) - 1, 'DATA_SIZE garbage')
    clear(nl, u)
    check(dev.data_size() == len(good), 'DATA_SIZE exact again')
    fault(nl, u, u32(F_SITE, SITE_DATA_SIZE), u32(F_EFFECT, E_FAIL_TO_ERROR))
    expect_errno(errno.EIO, dev.data_size)
    check(dev.state() == ERROR, 'DATA_SIZE FAIL_TO_ERROR')
    clear(nl, u)
    fault(nl, u, u32(F_SITE, SITE_RESET), u32(F_EFFECT, E_FAIL),
          u32(F_TRIGGER, T_NTH), u32(F_N, 1))
    expect_errno(errno.EIO, dev.reset)
    check(dev.state() == ERROR, 'RESET FAIL keeps ERROR')
    dev.reset()
    check(dev.state() == RUNNING, 'second reset works')
    clear(nl, u)
    fd = dev.set_state(PRE_COPY)
    fault(nl, u, u32(F_SITE, SITE_PRECOPY_INFO), u32(F_EFFECT, E_GARBAGE_SIZE),
          u32(F_TRIGGER, T_EVERY_NTH), u32(F_N, 2))
    a = smoke.precopy_info(fd)
    b = smoke.precopy_info(fd)
    check(a[2] < 1 << 40 and b[2] == b[3] == (1 << 64) - 1,
          'PRECOPY_INFO garbage on every 2nd')
    clear(nl, u)
    d = parse(dev_get(nl, u)[A_PRECOPY][0])
    check(2 in d and 3 in d, 'DEV_GET precopy figures in PRE_COPY')
    fault(nl, u, u32(F_SITE, SITE_READ), u32(F_EFFECT, E_FAIL_TO_ERROR),
          u32(F_ERRNO, errno.EBADMSG))
    expect_errno(errno.EBADMSG, os.read, fd, 10)
    check(dev.state() == ERROR, 'READ FAIL_TO_ERROR')
    expect_errno(errno.ENODEV, os.read, fd, 10)
    os.close(fd)
    clear(nl, u)
    dev.reset()

    # WRITE: corrupt is caught by the stream checks; short write.
    dev.set_state(STOP)
    fd = dev.set_state(RESUMING)
    fault(nl, u, u32(F_SITE, SITE_WRITE), u32(F_EFFECT, E_SHORT_IO),
          u32(F_TRIGGER, T_NTH), u32(F_N, 1))
    check(os.write(fd, good[:100]) == 50, 'SHORT_IO write')
    clear(nl, u)
    fault(nl, u, u32(F_SITE, SITE_WRITE), u32(F_EFFECT, E_CORRUPT))
    expect_errno(errno.EINVAL, os.write, fd, good[50:])
    clear(nl, u)
    os.close(fd)
    expect_errno(errno.EINVAL, dev.set_state, STOP)
    check(dev.state() == ERROR, 'corrupt write -> ERROR on STOP')
    dev.reset()

    # Counters.
    c = counters(nl, u)
    print('nl: counters', c)
    check(c[CNT_FAULTS_HIT] > 10 and c[CNT_TRANSITIONS] > 10 and
          c[CNT_TRANSITION_ERRORS] >= 2 and c[CNT_RESETS] >= 4 and
          c[CNT_BYTES_SAVED] >= 2 * len(good) and c[CNT_PRECOPY_QUERIES] == 2
          and c[CNT_BYTES_LOADED] >= 50, 'counters')
    nl.emu(CMD_COUNTERS_RESET, string(A_UUID, u))
    check(not any(counters(nl, u).values()), 'COUNTERS_RESET')

    # WORKLOAD through netlink, critical event.
    ev.events(0.2)
    nl.emu(CMD_WORKLOAD, string(A_UUID, u), u32(A_WORKLOAD_ACTION, 2),
           u32(A_WORKLOAD_COUNT, 3))
    check(dev.reg(smoke.REG_NR_RES) == 3, 'WORKLOAD reconfig')
    d0 = dev.reg(smoke.REG_DIGEST)
    nl.emu(CMD_WORKLOAD, string(A_UUID, u), u32(A_WORKLOAD_ACTION, 1),
           u32(A_WORKLOAD_COUNT, 3))
    check(dev.reg(smoke.REG_DIGEST) != d0, 'WORKLOAD dirty')
    evs = ev.events(0.3)
    check([c for c, _ in evs] == [EV_CRITICAL] and
          get_u(evs[0][1], A_NR_RESOURCES) == 3, 'critical event')
    dev.set_state(STOP)
    expect_nl(errno.EBUSY, nl.emu, CMD_WORKLOAD, string(A_UUID, u),
              u32(A_WORKLOAD_ACTION, 1), u32(A_WORKLOAD_COUNT, 1))
    dev.set_state(RUNNING)

    # Resource context bytes and the destination's load cost.
    knobs(nl, u, u32(KNOB_RESOURCE_BYTES, 3000),
          u32(KNOB_LOAD_US_PER_RES, 60000), u32(KNOB_LOAD_NS_PER_KIB, 1000))
    digest = dev.reg(smoke.REG_DIGEST)
    stream = save_stream(dev)
    check(len(stream) >= 3 * 3000, 'RESOURCE records carry context')
    fd = dev.set_state(RESUMING)
    t = time.monotonic()
    os.write(fd, stream)
    os.close(fd)
    dev.set_state(STOP)
    check(time.monotonic() - t >= 0.18, 'load cost per resource')
    check(dev.reg(smoke.REG_DIGEST) == digest, 'digest after resume')
    knobs(nl, u, u32(KNOB_RESOURCE_BYTES, 0), u32(KNOB_LOAD_US_PER_RES, 0),
          u32(KNOB_LOAD_NS_PER_KIB, 0))
    dev.set_state(RUNNING)

    # Background dirtying.
    dev.reset()
    knobs(nl, u, u32(KNOB_DIRTY_RATE, 2000))
    d0 = dev.reg(smoke.REG_DIGEST)
    time.sleep(0.3)
    check(dev.reg(smoke.REG_DIGEST) != d0, 'dirty rate runs in RUNNING')
    dev.set_state(STOP)
    time.sleep(0.05)
    d0 = dev.reg(smoke.REG_DIGEST)
    time.sleep(0.2)
    check(dev.reg(smoke.REG_DIGEST) == d0, 'dirty rate stops in STOP')
    dev.set_state(RUNNING)

    # Sessions seen as events; mem size refused while open.
    expect_nl(errno.EBUSY, knobs, nl, u, u64(KNOB_MEM_SIZE, 1 << 16),
              text='not open')
    knobs(nl, u, u32(KNOB_DIRTY_RATE, 0))
    ev.events(0.2)
    fd = dev.set_state(PRE_COPY)
    dev.set_state(RUNNING)
    os.close(fd)
    evs = [(c, get_u(a, A_SESSION_KIND), get_u(a, A_SESSION_OPEN))
           for c, a in ev.events(0.3) if c == EV_SESSION]
    check(evs == [(EV_SESSION, 1, 1), (EV_SESSION, 1, 0)], f'sessions {evs}')
    for f in (dev.fd, dev.group, dev.container):
        os.close(f)
    ev.sk.close()


def test_open_fault_and_mem_size(nl, u):
    fault(nl, u, u32(F_SITE, SITE_OPEN), u32(F_EFFECT, E_FAIL),
          u32(F_ERRNO, errno.EACCES), u32(F_TRIGGER, T_NTH), u32(F_N, 1))
    grp = os.path.basename(os.readlink(
        f'/sys/bus/mdev/devices/{u}/iommu_group'))
    container = os.open('/dev/vfio/vfio', os.O_RDWR)
    group = os.open(f'/dev/vfio/{grp}', os.O_RDWR)
    fcntl.ioctl(group, smoke.GROUP_SET_CONTAINER, struct.pack('i', container))
    fcntl.ioctl(container, smoke.SET_IOMMU, 3)
    expect_errno(errno.EACCES, fcntl.ioctl, group, smoke.GROUP_GET_DEVICE_FD,
                 bytearray(u.encode() + b'\0'))
    os.close(group)
    os.close(container)
    clear(nl, u)
    k = knobs(nl, u, u64(KNOB_MEM_SIZE, 1 << 16))
    check(get_u(k, KNOB_MEM_SIZE) == 1 << 16, 'MEM_SIZE knob reply')
    dev = smoke.Device(u)
    check(dev.regions[smoke.BAR2][1] == 1 << 16, 'BAR2 resized')
    dev.set_reg(smoke.REG_DIRTY, 100)
    data = save_stream(dev)
    fd = dev.set_state(RESUMING)
    os.write(fd, data)
    os.close(fd)
    dev.set_state(STOP)
    dev.set_state(RUNNING)
    for f in (dev.fd, dev.group, dev.container):
        os.close(f)
    knobs(nl, u, u64(KNOB_MEM_SIZE, 1 << 20))


def test_reinit_discard(nl, u):
    """REINIT_DISCARD: new initial data is the resources only."""
    knobs(nl, u, u32(KNOB_REINIT_POLICY, 1))
    dev = smoke.Device(u)
    dev.feature(smoke.FEAT_SET | smoke.FEAT_PRECOPY_V2, b'')
    dev.set_reg(smoke.REG_DIRTY, 20)
    fd = dev.set_state(PRE_COPY)
    data, why = smoke.read_all(fd, 1 << 16)
    check(why == 'ENOMSG', 'precopy drained')
    dev.set_reg(smoke.REG_DIRTY, 5)
    dev.set_reg(smoke.REG_RECONFIG, 2)
    _, flags, initial, dirty = smoke.precopy_info(fd)
    check(flags == 1 and initial == 2 * 48 and dirty == 0,
          f'DISCARD REINIT: flags {flags} initial {initial} dirty {dirty}')
    more = os.read(fd, initial)
    _, flags, initial, dirty = smoke.precopy_info(fd)
    check(flags == 0 and initial == 0 and dirty >= 4096,
          f'set-aside pages dirty again: {initial} {dirty}')
    rest, _ = smoke.read_all(fd, 1 << 16)
    dev.set_state(STOP_COPY)
    final, why = smoke.read_all(fd, 1 << 16)
    check(why == 'EOF', 'stop-copy EOF')
    digest = dev.reg(smoke.REG_DIGEST)
    os.close(fd)
    dev.set_state(STOP)
    fd = dev.set_state(RESUMING)
    os.write(fd, data + more + rest + final)
    os.close(fd)
    dev.set_state(STOP)
    check(dev.reg(smoke.REG_DIGEST) == digest, 'DISCARD stream resumes')
    for f in (dev.fd, dev.group, dev.container):
        os.close(f)
    knobs(nl, u, u32(KNOB_REINIT_POLICY, 0))


def main():
    uuids = sys.argv[1:]
    nl = Genl()
    test_basics(nl, uuids)
    test_unprivileged(uuids[0])
    test_faults_and_events(nl, uuids[0])
    test_reinit_discard(nl, uuids[0])
    test_open_fault_and_mem_size(nl, uuids[-1])
    print('nl: PASS')


if __name__ == '__main__':
    main()
