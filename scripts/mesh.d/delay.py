#!/usr/bin/python3
"""One-way delay for an Ethernet link: the `tc netem delay` this machine's kernel lacks.

    delay.py IN OUT DELAY_MS

Runs in the mesh's hub namespace between a host's veth end (IN) and a veth whose other end
sits on the bridge (OUT). Every frame that arrives on IN (the host's uplink) is held for
DELAY_MS and then sent out of OUT; every frame that arrives on OUT goes to IN at once. So the
host's upload sees the delay and its download does not, and a ping from the host measures an
RTT of at least DELAY_MS.

Frames travel through AF_PACKET sockets with PACKET_VNET_HDR: the kernel hands over the
virtio-net header with each frame (checksum-offload and segmentation state) and takes it
back when the frame is sent, so frames whose checksum the sending stack left to "hardware"
(veth does that) and TSO/GSO super-frames pass through intact instead of arriving with bad
checksums.

Bounded: at most MAX_QUEUED_FRAMES frames are held; beyond that frames are dropped, as a
router with a full queue would. Stops cleanly on SIGTERM/SIGINT.
"""
import collections
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
# Largest frame (a 64 KiB GSO super-frame) plus the 10-byte virtio-net header.
MAX_FRAME_BYTES = 65536 + 64
# Frames held at once; at 1 Gbit/s and 100 ms about 8,000 full-size frames are in flight.
MAX_QUEUED_FRAMES = 20000
# Largest delay accepted, in milliseconds.
MAX_DELAY_MS = 10000
# Socket buffer per direction, so bursts are not dropped by the kernel before we read them.
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024


def open_port(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
    s.bind((ifname, ETH_P_ALL))
    s.setblocking(False)
    return s


def send(sock, frame):
    try:
        sock.send(frame)
    except (BlockingIOError, OSError):
        pass  # a full device queue drops the frame, as a real link would


def main(argv):
    if len(argv) != 4 or not argv[3].isdigit() or int(argv[3]) > MAX_DELAY_MS:
        sys.stderr.write(f'usage: delay.py IN OUT DELAY_MS (0..{MAX_DELAY_MS})\n')
        return 2
    delay = int(argv[3]) / 1000.0
    inp, out = open_port(argv[1]), open_port(argv[2])
    held = collections.deque()

    def stop(*_):
        raise SystemExit(0)  # held frames are simply lost, as on a link that goes down
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    while True:
        timeout = None
        if held:
            timeout = max(0.0, held[0][0] - time.monotonic())
        readable, _, _ = select.select([inp, out], [], [], timeout)
        now = time.monotonic()
        for sock in readable:
            while True:
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME_BYTES)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own sends, seen again by the tap
                if sock is inp:
                    if len(held) < MAX_QUEUED_FRAMES:
                        held.append((now + delay, frame))
                else:
                    send(inp, frame)
        now = time.monotonic()
        while held and held[0][0] <= now:
            send(out, held.popleft()[1])


if __name__ == '__main__':
    sys.exit(main(sys.argv))
