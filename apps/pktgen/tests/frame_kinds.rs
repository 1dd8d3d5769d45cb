//! Frame kinds (issue 13 item 7) and templates (item 1): every kind (VLAN or not x IPv4 or
//! IPv6 x UDP or TCP) as etherparse reads it, byte for byte against a from-scratch build with
//! etherparse, every flipped bit after layer 2 detected, and each kind end to end through the
//! real pktgen binary on a net_ring loopback (0 lost, 0 corrupted) and on a net_pcap port
//! (every frame written is of the kind asked for).

use apps_common::testing::*;
use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, LinkHeader,
    NetHeaders, PacketHeaders, SingleVlanHeader, TcpHeader, TransportHeader, UdpHeader, VlanHeader,
    VlanId, VlanPcp,
};
use pktgen::frames::{
    buf_len, parse_frame, EtherAddrs, Flow, FlowTemplate, FrameKind, Parsed, SizeSpec, Templates,
    L4, MAGIC, MAX_FRAME, TSC_MASK, UDP_DST_BASE,
};
use proptest::prelude::*;
use serde_json::Value;

const PKTGEN: &str = env!("CARGO_BIN_EXE_pktgen");

const ETH: EtherAddrs = EtherAddrs {
    dst: [2, 0, 0, 0, 0, 1],
    src: [2, 0, 0, 0, 0, 2],
};

/// All eight kinds.
fn kinds() -> Vec<FrameKind> {
    let mut v = Vec::new();
    for vlan in [None, Some(100)] {
        for ipv6 in [false, true] {
            for l4 in [L4::Udp, L4::Tcp] {
                v.push(FrameKind { vlan, ipv6, l4 });
            }
        }
    }
    v
}

/// What the sender writes: the flow's template, stamped.
fn stamped(kind: FrameKind, size: usize, stream: u16, seq: u32, tsc: u64) -> Vec<u8> {
    let mut v = vec![0u8; buf_len(size)];
    FlowTemplate::new(kind, &ETH, &Flow::nth(stream), stream)
        .unwrap()
        .stamp(&mut v, seq, tsc);
    v
}

/// The test payload as the frame format says, written out here independently.
fn test_payload(len: usize, stream: u16, seq: u32, tsc: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&MAGIC.to_be_bytes());
    p.extend_from_slice(&stream.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(tsc & TSC_MASK).to_be_bytes()[2..]);
    let crc = pktgen::frames::payload_check(&p);
    p.extend_from_slice(&crc.to_be_bytes());
    p.extend((0..len - p.len()).map(|i| i as u8));
    p
}

/// A from-scratch build with etherparse: every header, the whole payload, every checksum
/// computed over everything.
fn reference(kind: FrameKind, size: usize, stream: u16, seq: u32, tsc: u64) -> Vec<u8> {
    let flow = Flow::nth(stream);
    let len = buf_len(size);
    let payload = test_payload(len - kind.payload_off(), stream, seq, tsc);
    let l4_len = len - kind.l4_off();
    let proto = match kind.l4 {
        L4::Udp => IpNumber::UDP,
        L4::Tcp => IpNumber::TCP,
    };
    let l3_type = if kind.ipv6 {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    };
    let mut f = Vec::new();
    Ethernet2Header {
        source: ETH.src,
        destination: ETH.dst,
        ether_type: if kind.vlan.is_some() {
            EtherType::VLAN_TAGGED_FRAME
        } else {
            l3_type
        },
    }
    .write(&mut f)
    .unwrap();
    if let Some(id) = kind.vlan {
        SingleVlanHeader {
            pcp: VlanPcp::ZERO,
            drop_eligible_indicator: false,
            vlan_id: VlanId::try_new(id).unwrap(),
            ether_type: l3_type,
        }
        .write(&mut f)
        .unwrap();
    }
    let mut tcp = TcpHeader::new(flow.src_port, flow.dst_port, 1, 0xffff);
    tcp.ack = true;
    tcp.psh = true;
    tcp.acknowledgment_number = 1;
    if kind.ipv6 {
        let ip = Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: l4_len as u16,
            next_header: proto,
            hop_limit: 64,
            source: flow.src_ip6(),
            destination: flow.dst_ip6(),
        };
        ip.write(&mut f).unwrap();
        match kind.l4 {
            L4::Udp => UdpHeader::with_ipv6_checksum(flow.src_port, flow.dst_port, &ip, &payload)
                .unwrap()
                .write(&mut f)
                .unwrap(),
            L4::Tcp => {
                tcp.checksum = tcp.calc_checksum_ipv6(&ip, &payload).unwrap();
                tcp.write(&mut f).unwrap();
            }
        }
    } else {
        let mut ip = Ipv4Header::new(l4_len as u16, 64, proto, flow.src_ip, flow.dst_ip).unwrap();
        ip.identification = seq as u16;
        ip.header_checksum = ip.calc_header_checksum();
        ip.write(&mut f).unwrap();
        match kind.l4 {
            L4::Udp => UdpHeader::with_ipv4_checksum(flow.src_port, flow.dst_port, &ip, &payload)
                .unwrap()
                .write(&mut f)
                .unwrap(),
            L4::Tcp => {
                tcp.checksum = tcp.calc_checksum_ipv4(&ip, &payload).unwrap();
                tcp.write(&mut f).unwrap();
            }
        }
    }
    f.extend_from_slice(&payload);
    assert_eq!(f.len(), len);
    f
}

/// Reads `f` with etherparse and checks every field against the kind and the flow (and the
/// Ethernet addresses against `eth`, where given), and every checksum. Returns the stream the
/// payload names.
fn check_with_etherparse(kind: FrameKind, f: &[u8], eth: Option<&EtherAddrs>) -> u16 {
    let h = PacketHeaders::from_ethernet_slice(f).unwrap_or_else(|e| panic!("{kind}: {e}"));
    let payload = h.payload.slice();
    assert_eq!(payload.len(), f.len() - kind.payload_off(), "{kind}");
    assert_eq!(&payload[..2], &MAGIC.to_be_bytes());
    let stream = u16::from_be_bytes([payload[2], payload[3]]);
    let flow = Flow::nth(stream);
    match h.link {
        Some(LinkHeader::Ethernet2(e)) => {
            if let Some(eth) = eth {
                assert_eq!((e.source, e.destination), (eth.src, eth.dst));
            }
        }
        other => panic!("{kind}: link {other:?}"),
    }
    match (kind.vlan, &h.vlan) {
        (None, None) => {}
        (Some(id), Some(VlanHeader::Single(v))) => {
            assert_eq!(v.vlan_id.value(), id);
            assert_eq!(v.pcp.value(), 0);
        }
        other => panic!("{kind}: vlan {other:?}"),
    }
    let (src_port, dst_port) = match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), Some(t)) if !kind.ipv6 => {
            assert_eq!((ip.source, ip.destination), (flow.src_ip, flow.dst_ip));
            assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "{kind}");
            assert_eq!(ip.total_len as usize, f.len() - kind.l3_off());
            assert_eq!(ip.time_to_live, 64);
            match (kind.l4, t) {
                (L4::Udp, TransportHeader::Udp(u)) => {
                    assert_eq!(u.length as usize, f.len() - kind.l4_off());
                    assert_eq!(u.checksum, u.calc_checksum_ipv4(ip, payload).unwrap());
                    (u.source_port, u.destination_port)
                }
                (L4::Tcp, TransportHeader::Tcp(t)) => {
                    assert_eq!(t.checksum, t.calc_checksum_ipv4(ip, payload).unwrap());
                    assert!(t.ack && t.psh && !t.syn && !t.fin && !t.rst);
                    (t.source_port, t.destination_port)
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(t)) if kind.ipv6 => {
            assert_eq!(
                (ip.source, ip.destination),
                (flow.src_ip6(), flow.dst_ip6())
            );
            assert_eq!(ip.payload_length as usize, f.len() - kind.l4_off());
            assert_eq!(ip.hop_limit, 64);
            match (kind.l4, t) {
                (L4::Udp, TransportHeader::Udp(u)) => {
                    assert_eq!(u.length as usize, f.len() - kind.l4_off());
                    assert_eq!(u.checksum, u.calc_checksum_ipv6(ip, payload).unwrap());
                    (u.source_port, u.destination_port)
                }
                (L4::Tcp, TransportHeader::Tcp(t)) => {
                    assert_eq!(t.checksum, t.calc_checksum_ipv6(ip, payload).unwrap());
                    assert!(t.ack && t.psh && !t.syn && !t.fin && !t.rst);
                    (t.source_port, t.destination_port)
                }
                other => panic!("{kind}: {other:?}"),
            }
        }
        other => panic!("{kind}: {other:?}"),
    };
    assert_eq!((src_port, dst_port), (flow.src_port, flow.dst_port));
    stream
}

/// Bytes whose change makes a frame not ours (foreign) rather than corrupted: the IP version
/// and header length, the protocol, the destination port's high byte, the magic.
fn identifying(kind: FrameKind, i: usize) -> bool {
    let (l3, l4, p) = (kind.l3_off(), kind.l4_off(), kind.payload_off());
    let proto = l3 + if kind.ipv6 { 6 } else { 9 };
    i == l3 || i == proto || i == l4 + 2 || i == p || i == p + 1
}

#[test]
fn every_kind_reads_back_with_etherparse_and_equals_a_from_scratch_build() {
    for kind in kinds() {
        for size in [
            kind.min_frame(),
            kind.min_frame() + 1,
            128,
            594,
            1517,
            MAX_FRAME,
        ] {
            for (stream, seq, tsc) in [
                (0, 0, 0),
                (7, 12345, 0xdead_beef_cafe),
                (65535, u32::MAX, u64::MAX),
            ] {
                let f = stamped(kind, size, stream, seq, tsc);
                assert_eq!(f, reference(kind, size, stream, seq, tsc), "{kind} {size}");
                assert_eq!(check_with_etherparse(kind, &f, Some(&ETH)), stream);
                assert_eq!(
                    parse_frame(&f),
                    Parsed::Test {
                        stream,
                        seq,
                        tsc: tsc & TSC_MASK
                    },
                    "{kind} {size}"
                );
            }
        }
    }
}

#[test]
fn templates_stamp_each_stream_with_its_flow_and_refuse_small_sizes() {
    let kind = FrameKind {
        vlan: Some(7),
        ipv6: true,
        l4: L4::Tcp,
    };
    let flows: Vec<Flow> = (0..4).map(Flow::nth).collect();
    let t = Templates::new(kind, &ETH, &flows, &SizeSpec::Range(100, 1518)).unwrap();
    for stream in 0..4u16 {
        let mut f = vec![0u8; buf_len(300)];
        t.stamp(&mut f, stream, 9, 77);
        assert_eq!(f, reference(kind, 300, stream, 9, 77));
    }
    // A stream without a template, a length no size gives: left unwritten, no panic.
    let mut f = vec![0u8; buf_len(300)];
    t.stamp(&mut f, 4, 9, 77);
    let mut short = vec![0u8; 50];
    t.stamp(&mut short, 0, 9, 77);
    assert!(f.iter().chain(&short).all(|&b| b == 0));
    let e = Templates::new(kind, &ETH, &flows, &SizeSpec::Imix).unwrap_err();
    assert_eq!(
        e,
        "invalid size imix: VLAN 7 IPv6/TCP frames need 100 bytes or more (FCS included) to \
         hold their headers and the test header"
    );
    assert!(Templates::new(kind, &ETH, &[], &SizeSpec::Fixed(128)).is_err());
    assert_eq!(
        kinds().iter().map(FrameKind::min_frame).collect::<Vec<_>>(),
        [64, 76, 84, 96, 68, 80, 88, 100]
    );
}

#[test]
fn frames_of_other_kinds_are_foreign() {
    for kind in kinds() {
        let f = stamped(kind, 256, 1, 2, 3);
        // Another EtherType (ARP), another protocol (ICMP), another port range.
        let mut arp = f.clone();
        arp[kind.l3_off() - 2..kind.l3_off()].copy_from_slice(&[0x08, 0x06]);
        let mut icmp = f.clone();
        icmp[kind.l3_off() + if kind.ipv6 { 6 } else { 9 }] = 1;
        let mut port = f.clone();
        port[kind.l4_off() + 2..kind.l4_off() + 4]
            .copy_from_slice(&(UDP_DST_BASE - 1).to_be_bytes());
        for g in [arp, icmp, port] {
            assert_eq!(parse_frame(&g), Parsed::Foreign, "{kind}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Template + stamp, for any kind, size, stream, sequence number and TSC, is byte for byte
    /// what a from-scratch etherparse build gives, and parses back as sent.
    #[test]
    fn template_and_stamp_equal_a_from_scratch_build(
        k in 0usize..8,
        size in 64usize..=MAX_FRAME,
        stream: u16,
        seq: u32,
        tsc: u64,
    ) {
        let kind = kinds()[k];
        let size = size.max(kind.min_frame());
        let f = stamped(kind, size, stream, seq, tsc);
        prop_assert_eq!(&f, &reference(kind, size, stream, seq, tsc));
        prop_assert_eq!(parse_frame(&f), Parsed::Test { stream, seq, tsc: tsc & TSC_MASK });
    }

    /// One flipped bit anywhere in the IP header, the L4 header or the payload: corrupted (or
    /// foreign, where the bit is one of those that make the frame ours), never intact.
    #[test]
    fn any_flipped_bit_after_layer_2_is_detected(
        k in 0usize..8,
        size in 64usize..=MAX_FRAME,
        stream: u16,
        seq: u32,
        tsc: u64,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let kind = kinds()[k];
        let size = size.max(kind.min_frame());
        let mut f = stamped(kind, size, stream, seq, tsc);
        let i = kind.l3_off() + at.index(f.len() - kind.l3_off());
        f[i] ^= 1 << bit;
        let p = parse_frame(&f);
        if identifying(kind, i) {
            prop_assert!(!matches!(p, Parsed::Test { .. }), "{} byte {} bit {}: {:?}", kind, i, bit, p);
        } else {
            prop_assert!(matches!(p, Parsed::Corrupted { .. }), "{} byte {} bit {}: {:?}", kind, i, bit, p);
        }
    }
}

/// The command-line options of a kind.
fn kind_args(kind: FrameKind) -> Vec<String> {
    let mut a = vec!["--proto".to_owned(), kind.l4.to_string().to_lowercase()];
    if let Some(v) = kind.vlan {
        a.extend(["--vlan".to_owned(), v.to_string()]);
    }
    if kind.ipv6 {
        a.push("--ipv6".into());
    }
    a
}

/// Each kind through the real binary on a net_ring loopback: every frame back, intact, with
/// sizes spread over the range (the templates' stamp) and of one size (the prebuilt frames,
/// the filler written once into every TX buffer: 40000 frames, more than the TX pool holds,
/// so buffers come back and are reused).
#[test]
fn every_kind_end_to_end_on_a_ring_loopback() {
    for (kind, fixed) in kinds().into_iter().flat_map(|k| [(k, false), (k, true)]) {
        let dir = scratch(&format!(
            "kind-ring-{}-{fixed}",
            kind.to_string().replace([' ', '/'], "-")
        ));
        let report = dir.join("report.json");
        let mut eal = eal_base();
        eal.push("--vdev=net_ring0".into());
        let (size, count) = match fixed {
            false => (format!("{}-1518", kind.min_frame()), 3000u64),
            true => ("1518".to_owned(), 40000),
        };
        let count_arg = count.to_string();
        let mut app: Vec<String> = [
            "--count",
            &count_arg,
            "--rate",
            "200Kpps",
            "--flows",
            "4",
            "--size",
            &size,
            "-T",
            "0",
            "--drain-ms",
            "100",
            "--report",
            report.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .to_vec();
        app.extend(kind_args(kind));
        let app: Vec<&str> = app.iter().map(String::as_str).collect();
        let o = run_app(PKTGEN, &eal, &app);
        assert_success("pktgen", &o);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(&format!(", {kind} frames,")), "{kind}: {out}");
        // Frames of one size over 128 bytes: sent with the filler already in every buffer,
        // fewer buffers than frames (each was reused).
        let prefilled: Option<u64> = out.lines().find_map(|l| {
            l.strip_prefix("pktgen: filler written once into the ")?
                .strip_suffix(" TX buffers")?
                .parse()
                .ok()
        });
        assert_eq!(prefilled.is_some(), fixed, "{kind}: {out}");
        if let Some(n) = prefilled {
            assert!(n < count, "{kind}: {n} buffers for {count} frames");
        }
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        for (key, want) in [
            ("sent", count),
            ("received", count),
            ("lost", 0),
            ("corrupted", 0),
            ("foreign", 0),
            ("duplicated", 0),
        ] {
            assert_eq!(r[key].as_u64(), Some(want), "{kind} {key}: {r:#}");
        }
        assert_eq!(r["verdict"], "pass", "{kind}: {r:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Each kind through the real binary onto a net_pcap port: every frame written is of the kind
/// asked for, as etherparse reads it, with valid checksums and every flow's addresses.
#[test]
fn every_kind_on_the_wire_is_the_kind_asked_for() {
    for kind in kinds() {
        let dir = scratch(&format!(
            "kind-pcap-{}",
            kind.to_string().replace([' ', '/'], "-")
        ));
        let empty = dir.join("empty.pcap");
        write_pcap(&empty, &[]);
        let out = dir.join("out.pcap");
        let mut eal = eal_base();
        eal.push(format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            empty.display(),
            out.display()
        ));
        let size = format!("{}-1518", kind.min_frame());
        let mut app: Vec<String> = [
            "--count",
            "400",
            "--flows",
            "3",
            "--size",
            &size,
            "-T",
            "0",
            "--drain-ms",
            "0",
            "--max-loss",
            "100%",
        ]
        .map(str::to_owned)
        .to_vec();
        app.extend(kind_args(kind));
        let app: Vec<&str> = app.iter().map(String::as_str).collect();
        let o = run_app(PKTGEN, &eal, &app);
        assert_success("pktgen", &o);
        let frames = read_pcap(&out);
        assert_eq!(frames.len(), 400, "{kind}");
        let mut per_stream = [0u32; 3];
        for (n, f) in frames.iter().enumerate() {
            let stream = check_with_etherparse(kind, f, None);
            assert_eq!(stream as usize, n % 3, "{kind}: round robin over the flows");
            let seq = per_stream[stream as usize];
            per_stream[stream as usize] += 1;
            match parse_frame(f) {
                Parsed::Test {
                    stream: s, seq: q, ..
                } => assert_eq!((s, q), (stream, seq)),
                other => panic!("{kind} frame {n}: {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
