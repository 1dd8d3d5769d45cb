#!/usr/bin/env python3
"""Writes the sample inputs of configs/l2fwd-pcap.toml: 300 Ethernet/IPv4/UDP frames per port,
sizes 64..1514, deterministic payloads. Standard library only."""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(rng, port, seq):
    size = rng.randint(64, 1514)
    payload = bytes(rng.getrandbits(8) for _ in range(size - 42))
    udp = struct.pack("!HHHH", 1024 + port, 2048, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
                     bytes([198, 18, port, 1]), bytes([198, 18, 1 - port, 1]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = bytes([2, 0, 0, 0, 0, port]) + bytes([2, 0, 0, 0, 1, port]) + b"\x08\x00"
    return eth + ip + udp


def write(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)))
            f.write(fr)


for port in (0, 1):
    rng = random.Random(port)
    write(os.path.join(HERE, "in%d.pcap" % port), [frame(rng, port, i) for i in range(300)])
