#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Guest smoke test of one vfio_mig_emu instance through real vfio fds.

usage: smoke.py UUID PROFILE

Migrates the device onto itself (save, reset, resume), checks the digest,
the errno contract of the data fds and the ERROR path of a corrupt stream.
The real suite is harness/ (C++); this only proves the module works.
"""
import errno
import fcntl
import os
import select
import struct
import sys

VFIO = ord(';')


def io(nr):
    return (VFIO << 8) | (100 + nr)


GET_API_VERSION = io(0)
SET_IOMMU = io(2)
GROUP_SET_CONTAINER = io(4)
GROUP_GET_DEVICE_FD = io(6)
DEVICE_GET_INFO = io(7)
DEVICE_GET_REGION_INFO = io(8)
DEVICE_GET_IRQ_INFO = io(9)
DEVICE_RESET = io(11)
DEVICE_FEATURE = io(17)
MIG_GET_PRECOPY_INFO = io(21)

FEAT_GET, FEAT_SET, FEAT_PROBE = 1 << 16, 1 << 17, 1 << 18
FEAT_MIGRATION, FEAT_MIG_STATE, FEAT_DATA_SIZE = 1, 2, 9
ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, \
    PRE_COPY_P2P = range(8)
MIG_STOP_COPY, MIG_P2P, MIG_PRE_COPY = 1, 2, 4

CONFIG, BAR0, BAR2 = 7, 0, 2
REG_MAGIC, REG_STATE, REG_DIGEST = 0x0, 0xc, 0x18
REG_DIRTY, REG_RECONFIG, REG_NR_RES, REG_SCRATCH = 0x20, 0x24, 0x28, 0x100

FLAGS = {'full': MIG_STOP_COPY | MIG_P2P | MIG_PRE_COPY,
         'stopcopy': MIG_STOP_COPY,
         'p2p': MIG_STOP_COPY | MIG_P2P,
         'precopy': MIG_STOP_COPY | MIG_PRE_COPY}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_errno(err, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        check(e.errno == err, f'{fn.__name__}: errno {e.errno}, want {err}')
        return
    raise AssertionError(f'{fn.__name__}: succeeded, want errno {err}')


class Device:
    def __init__(self, uuid):
        grp = os.path.basename(os.readlink(
            f'/sys/bus/mdev/devices/{uuid}/iommu_group'))
        self.container = os.open('/dev/vfio/vfio', os.O_RDWR)
        check(fcntl.ioctl(self.container, GET_API_VERSION) == 0, 'api')
        self.group = os.open(f'/dev/vfio/{grp}', os.O_RDWR)
        fcntl.ioctl(self.group, GROUP_SET_CONTAINER,
                    struct.pack('i', self.container))
        fcntl.ioctl(self.container, SET_IOMMU, 3)  # VFIO_TYPE1v2_IOMMU
        self.fd = fcntl.ioctl(self.group, GROUP_GET_DEVICE_FD,
                              bytearray(uuid.encode() + b'\0'))
        check(self.fd >= 0, 'device fd')
        self.regions = {}
        for idx in (CONFIG, BAR0, BAR2):
            info = bytearray(struct.pack('IIIIQQ', 32, 0, idx, 0, 0, 0))
            fcntl.ioctl(self.fd, DEVICE_GET_REGION_INFO, info)
            _, _, _, _, size, off = struct.unpack('IIIIQQ', info)
            self.regions[idx] = (off, size)

    def reg(self, off):
        return struct.unpack('<I', os.pread(self.fd, 4,
                                            self.regions[BAR0][0] + off))[0]

    def set_reg(self, off, val):
        os.pwrite(self.fd, struct.pack('<I', val), self.regions[BAR0][0] + off)

    def mem_write(self, off, data):
        return os.pwrite(self.fd, data, self.regions[BAR2][0] + off)

    def mem_read(self, off, n):
        return os.pread(self.fd, n, self.regions[BAR2][0] + off)

    def feature(self, flags, payload):
        buf = bytearray(struct.pack('II', 8 + len(payload), flags) + payload)
        fcntl.ioctl(self.fd, DEVICE_FEATURE, buf)
        return bytes(buf[8:])

    def mig_flags(self):
        return struct.unpack('Q', self.feature(FEAT_GET | FEAT_MIGRATION,
                                               bytes(8)))[0]

    def state(self):
        return struct.unpack('Ii', self.feature(FEAT_GET | FEAT_MIG_STATE,
                                                bytes(8)))[0]

    def set_state(self, st):
        out = self.feature(FEAT_SET | FEAT_MIG_STATE, struct.pack('Ii', st, -1))
        fd = struct.unpack('Ii', out)[1]
        return fd

    def data_size(self):
        return struct.unpack('Q', self.feature(FEAT_GET | FEAT_DATA_SIZE,
                                               bytes(8)))[0]

    def reset(self):
        fcntl.ioctl(self.fd, DEVICE_RESET)


def precopy_info(fd, flags=0):
    buf = bytearray(struct.pack('IIQQ', 24, flags, 0, 0))
    fcntl.ioctl(fd, MIG_GET_PRECOPY_INFO, buf)
    return struct.unpack('IIQQ', buf)


def read_all(fd, chunk):
    """Read until EOF (stop-copy) or ENOMSG (precopy); returns (data, why)."""
    out = bytearray()
    while True:
        try:
            b = os.read(fd, chunk)
        except OSError as e:
            if e.errno == errno.ENOMSG:
                return bytes(out), 'ENOMSG'
            raise
        if not b:
            return bytes(out), 'EOF'
        out += b


def save(dev, flags):
    """Workload, then a saving session; returns (stream, digest)."""
    for i in range(8):
        dev.mem_write(i * 4096 * 3 + 17, bytes([i + 1]) * 5000)
    dev.set_reg(REG_SCRATCH + 8, 0xdeadbeef)
    dev.set_reg(REG_DIRTY, 20)
    dev.set_reg(REG_RECONFIG, 5)
    check(dev.reg(REG_NR_RES) == 5, 'nr_resources')
    expect_errno(errno.EINVAL, os.pwrite, dev.fd, b'\0\0',
                 dev.regions[BAR0][0] + REG_SCRATCH)
    expect_errno(errno.EINVAL, os.pwrite, dev.fd, b'\0\0\0\0',
                 dev.regions[BAR0][0] + REG_MAGIC)

    stream = bytearray()
    if flags & MIG_PRE_COPY:
        fd = dev.set_state(PRE_COPY)
        check(fd >= 0, 'PRE_COPY returns an fd')
        _, fl, init, dirty = precopy_info(fd, flags=0x55)
        check(fl == 0x55, 'v1 precopy info echoes flags')
        check(init > 0, 'initial_bytes > 0')
        data, why = read_all(fd, 1000)
        check(why == 'ENOMSG', 'precopy end of stream is ENOMSG')
        stream += data
        _, _, init, dirty = precopy_info(fd)
        check(init == 0 and dirty == 0, f'drained: {init} {dirty}')
        p = select.poll()
        p.register(fd, select.POLLIN)
        check(p.poll(0) == [], 'nothing to poll')
        dev.mem_write(4096 * 200, b'x' * 4096)
        check(p.poll(1000) != [], 'dirty page wakes poll')
        _, _, init, dirty = precopy_info(fd)
        check(init == 0 and dirty == 4096 + 32, f'dirty_bytes {dirty}')
        data, why = read_all(fd, 777)
        stream += data
        digest_running = dev.reg(REG_DIGEST)
        if flags & MIG_P2P:
            check(dev.set_state(PRE_COPY_P2P) == -1, 'no new fd in P2P')
        remaining = dev.data_size()
        check(dev.set_state(STOP_COPY) == -1, 'same fd in STOP_COPY')
        expect_errno(errno.EINVAL, precopy_info, fd)
        expect_errno(errno.EBUSY, dev.mem_write, 0, b'z')
        check(dev.reg(REG_DIGEST) == digest_running, 'digest stable')
        data, why = read_all(fd, 4096 + 5)
        check(why == 'EOF', 'stop-copy end is EOF')
        check(len(data) == remaining, f'data size {remaining} != {len(data)}')
        stream += data
        check(os.read(fd, 100) == b'', 'EOF again')
    else:
        dev.set_state(STOP)
        size = dev.data_size()
        fd = dev.set_state(STOP_COPY)
        check(fd >= 0, 'STOP_COPY returns an fd')
        expect_errno(errno.EINVAL, precopy_info, fd)
        data, why = read_all(fd, 65536)
        check(why == 'EOF', 'stop-copy end is EOF')
        check(len(data) == size, f'data size {size} != {len(data)}')
        stream += data
    digest = dev.reg(REG_DIGEST)
    dev.set_state(STOP)
    expect_errno(errno.ENODEV, os.read, fd, 10)
    os.close(fd)
    return bytes(stream), digest


def resume(dev, stream, chunk):
    fd = dev.set_state(RESUMING)
    check(fd >= 0, 'RESUMING returns an fd')
    expect_errno(errno.EBUSY, dev.set_reg, REG_SCRATCH, 1)
    try:
        for i in range(0, len(stream), chunk):
            os.write(fd, stream[i:i + chunk])
        dev.set_state(STOP)
    finally:
        os.close(fd)


FEAT_PRECOPY_V2 = 12
REINIT = 1


def precopy_v2(dev, flags):
    """PRECOPY_INFOv2 opt-in and REINIT on reconfiguration in precopy."""
    if not flags & MIG_PRE_COPY:
        expect_errno(errno.ENOTTY, dev.feature, FEAT_SET | FEAT_PRECOPY_V2,
                     b'')
        return None
    dev.feature(FEAT_PROBE | FEAT_SET | FEAT_PRECOPY_V2, b'')
    expect_errno(errno.EINVAL, dev.feature, FEAT_GET | FEAT_PRECOPY_V2, b'')
    dev.feature(FEAT_SET | FEAT_PRECOPY_V2, b'')
    dev.reset()
    dev.mem_write(0, b'a' * 10000)
    dev.set_reg(REG_RECONFIG, 2)
    fd = dev.set_state(PRE_COPY)
    _, fl, init, dirty = precopy_info(fd, flags=0x55)
    check(fl == 0, f'v2 flags are an output: {fl:#x}')
    # The memory written before the session is initial data: dirty_bytes
    # starts at zero (uAPI).
    check(init == 40 + 288 + 2 * 48 + 3 * 4096 + 32, f'initial_bytes {init}')
    check(dirty == 0, f'dirty_bytes {dirty}')
    stream, why = read_all(fd, 100)
    check(why == 'ENOMSG', 'precopy ENOMSG')
    dev.set_reg(REG_RECONFIG, 3)
    dev.mem_write(4096 * 7, b'b' * 4096)
    p = select.poll()
    p.register(fd, select.POLLIN)
    check(p.poll(1000) != [], 'reconfig readable')
    _, fl, init, dirty = precopy_info(fd)
    check(fl == REINIT, f'REINIT reported: {fl:#x}')
    check(init == 3 * 48 + 4096 + 32 and dirty == 0,
          f'after REINIT: initial {init} dirty {dirty}')
    _, fl, _, _ = precopy_info(fd)
    check(fl == 0, 'REINIT reported once')
    data, why = read_all(fd, 1000)
    stream += data
    _, fl, init, dirty = precopy_info(fd)
    check(init == 0 and dirty == 0, 'initial data read')
    size = dev.data_size()
    dev.set_state(STOP_COPY)
    data, why = read_all(fd, 65536)
    check(why == 'EOF' and len(data) == size, 'stop-copy after REINIT')
    stream += data
    digest = dev.reg(REG_DIGEST)
    dev.set_state(STOP)
    os.close(fd)
    dev.reset()
    dev.set_state(STOP)
    resume(dev, stream, 1000)
    check(dev.reg(REG_DIGEST) == digest, 'digest after REINIT resume')
    check(dev.reg(REG_NR_RES) == 5, 'resources after REINIT resume')
    dev.reset()
    return digest


def records(stream):
    """Split a stream into [header, record, record, ...] byte strings."""
    out, off = [stream[:40]], 40
    while off < len(stream):
        length = struct.unpack_from('<I', stream, off + 12)[0]
        out.append(stream[off:off + 32 + length])
        off += 32 + length
    return out


def rejected(dev, stream, what):
    """Load @stream; it must fail and leave the device in ERROR."""
    dev.reset()
    dev.set_state(STOP)
    fd = dev.set_state(RESUMING)
    try:
        try:
            os.write(fd, stream)
        except OSError as e:
            check(e.errno == errno.EINVAL, f'{what}: write errno {e.errno}')
        expect_errno(errno.EINVAL, dev.set_state, STOP)
        check(dev.state() == ERROR, f'{what}: not ERROR')
    finally:
        os.close(fd)
    dev.reset()


def corrupt_streams(dev, stream):
    recs = records(stream)
    check(len(recs) > 6, 'enough records')
    cases = {
        'truncated header': stream[:20],
        'truncated record': stream[:len(stream) - 40],
        'lost record': b''.join(recs[:3] + recs[4:]),
        'reordered': b''.join(recs[:2] + [recs[3], recs[2]] + recs[4:]),
        'data after END': stream + b'\0',
        'END twice': stream + recs[-1],
        'bad magic': b'X' + stream[1:],
        'header only': recs[0],
    }
    for what, bad in cases.items():
        rejected(dev, bad, what)
    # The intact stream still loads, fed in odd chunks.
    dev.reset()
    dev.set_state(STOP)
    resume(dev, stream, 7)
    check(dev.state() == STOP, 'intact stream after corrupt ones')
    dev.reset()


def main():
    uuid, prof = sys.argv[1], sys.argv[2]
    dev = Device(uuid)
    flags = dev.mig_flags()
    check(flags == FLAGS[prof], f'migration flags {flags:#x}')
    check(dev.reg(REG_MAGIC) == 0x55454d56, 'magic')
    check(dev.state() == RUNNING, 'RUNNING after open')
    info = bytearray(struct.pack('IIII', 16, 0, 0, 0))
    fcntl.ioctl(dev.fd, DEVICE_GET_INFO, info)
    check(struct.unpack('IIII', info)[1] == 3, 'PCI|RESET flags')
    cfg = os.pread(dev.fd, 4, dev.regions[CONFIG][0])
    check(cfg == struct.pack('<HH', 0xfffe, 0x6d65), 'config ids')

    stream, digest = save(dev, flags)
    print(f'{prof}: stream {len(stream)} bytes, digest {digest:#010x}')

    dev.reset()
    check(dev.state() == RUNNING and dev.reg(REG_DIGEST) != digest, 'reset')
    dev.set_state(STOP)
    resume(dev, stream, 333)
    check(dev.state() == STOP, 'STOP after resume')
    check(dev.reg(REG_DIGEST) == digest, 'digest after resume')
    check(dev.reg(REG_NR_RES) == 5, 'resources after resume')
    dev.set_state(RUNNING)
    check(dev.mem_read(17, 3) == b'\1\1\1', 'memory after resume')
    if prof == 'full':
        corrupt_streams(dev, stream)

    # A corrupt stream: write fails, RESUMING -> STOP fails into ERROR.
    bad = bytearray(stream)
    bad[len(bad) // 2] ^= 0x40
    dev.set_state(STOP)
    fd = dev.set_state(RESUMING)
    try:
        for i in range(0, len(bad), 4096):
            os.write(fd, bad[i:i + 4096])
        raise AssertionError('corrupt stream accepted')
    except OSError as e:
        check(e.errno == errno.EINVAL, f'corrupt stream errno {e.errno}')
    expect_errno(errno.EINVAL, os.write, fd, b'more')
    expect_errno(errno.EINVAL, dev.set_state, STOP)
    expect_errno(errno.ENODEV, os.write, fd, b'more')
    os.close(fd)
    check(dev.state() == ERROR, 'ERROR after corrupt stream')
    expect_errno(errno.EINVAL, dev.set_state, RUNNING)
    dev.reset()
    check(dev.state() == RUNNING, 'RUNNING after reset')

    precopy_v2(dev, flags)

    # Truncated stream (no END).
    dev.set_state(STOP)
    expect_errno(errno.EINVAL, resume, dev, stream[:-32], 65536)
    check(dev.state() == ERROR, 'ERROR after truncated stream')
    dev.reset()

    # Session ends when the device is reset under an open data fd.
    dev.set_state(STOP)
    fd = dev.set_state(STOP_COPY)
    os.read(fd, 10)
    dev.reset()
    expect_errno(errno.ENODEV, os.read, fd, 10)
    os.close(fd)
    # ... and when the device fd is closed with a data fd open.
    fd = dev.set_state(PRE_COPY if flags & MIG_PRE_COPY else STOP)
    if fd < 0:
        fd = dev.set_state(STOP_COPY)
    os.close(dev.fd)
    expect_errno(errno.ENODEV, os.read, fd, 10)
    os.close(fd)
    print(f'{prof}: ok')


if __name__ == '__main__':
    main()
