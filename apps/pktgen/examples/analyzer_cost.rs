//! What one core spends per frame on each side of pktgen, without a device: the sender's
//! stamp of one-size frames, and the analyzer on the same buffers, with the receiver's fast
//! check (`FixedFrames::check`) and by parsing (`parse_frame`), then the check and the parse
//! alone. Buffers are reused round robin, as a mempool's are, and hold the filler already, as
//! pktgen's TX pool does (the stamp writes at most 128 bytes of a frame).
//!
//! `cargo run --release -p pktgen --example analyzer_cost -- [SIZE] [FLOWS] [BUFFERS] [PASSES]`
//! (default 64 1 8192 200; 256 buffers stay in the caches, 8192 do not).
use pktgen::analyzer::Analyzer;
use pktgen::frames::{
    parse_frame, EtherAddrs, FixedFrames, FrameKind, Parsed, SizeSpec, Templates,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (size, flows, nbuf, passes): (usize, u16, usize, usize) = (
        arg(1, 64),
        arg(2, 1).max(1),
        arg(3, 8192).max(1),
        arg(4, 200).max(1),
    );
    let kind = FrameKind::default();
    let eth = EtherAddrs {
        dst: [2, 0, 0, 0, 0, 1],
        src: [2, 0, 0, 0, 0, 2],
    };
    let ids: Vec<u16> = (0..flows).collect();
    let Some(mut tx) = Templates::for_streams(kind, &eth, &ids, &SizeSpec::Fixed(size))
        .ok()
        .and_then(|t| FixedFrames::new(&t, size))
    else {
        eprintln!("analyzer_cost: no frames of {size} bytes");
        std::process::exit(2);
    };
    let rx = FixedFrames::for_receiver(kind, flows, size).map(Arc::new);
    let len = tx.len();
    let mut bufs = vec![vec![0u8; 2048]; nbuf];
    let prefilled = bufs.iter_mut().all(|b| tx.prefill(b));
    tx.set_filler_in_place(prefilled);
    let mut seq = vec![0u64; flows as usize];
    let mut next = 0;
    let hz = 2_000_000_000;
    let mut fast = Analyzer::new(flows as usize, hz);
    if let Some(rx) = &rx {
        fast.set_fixed(Arc::clone(rx));
    }
    let mut slow = Analyzer::new(flows as usize, hz);
    let (mut t_tx, mut t_fast, mut t_slow) = (0f64, 0f64, 0f64);
    for pass in 0..passes {
        let t0 = Instant::now();
        for chunk in bufs.chunks_mut(32) {
            let rooms = chunk.iter_mut().map(|b| &mut b[..]);
            tx.stamp_burst(rooms, &mut seq, &mut next, pass as u64 * 1000);
        }
        t_tx += t0.elapsed().as_secs_f64();
        // Both analyzers take every pass, so that each sees every frame of its streams in
        // order (no gaps to clear); which goes first alternates, so that neither always finds
        // the buffers warm from the other.
        let order = if pass.is_multiple_of(2) {
            [(&mut fast, &mut t_fast), (&mut slow, &mut t_slow)]
        } else {
            [(&mut slow, &mut t_slow), (&mut fast, &mut t_fast)]
        };
        for (a, t) in order {
            let t0 = Instant::now();
            for chunk in bufs.chunks(32) {
                a.begin_burst();
                for b in chunk {
                    a.record(&b[..len], pass as u64 * 1000 + 500);
                }
                a.end_burst();
            }
            *t += t0.elapsed().as_secs_f64();
        }
    }
    let mut ours = 0u64;
    let t0 = Instant::now();
    for _ in 0..passes {
        for b in &bufs {
            let c = rx.as_ref().and_then(|rx| rx.check(black_box(&b[..len])));
            ours += u64::from(c.is_some());
        }
    }
    let t_check = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    for _ in 0..passes {
        for b in &bufs {
            ours += u64::from(matches!(
                parse_frame(black_box(&b[..len])),
                Parsed::Test { .. }
            ));
        }
    }
    let t_parse = t0.elapsed().as_secs_f64();
    let n = (nbuf * passes) as f64;
    let ns = |t: f64, n: f64| t / n * 1e9;
    println!(
        "size {size}, {flows} flow(s), {nbuf} buffers, ns a frame: stamp {:.1}; analyzer with the check {:.1}, by parsing {:.1}; check alone {:.1}, parse alone {:.1}",
        ns(t_tx, n),
        ns(t_fast, n),
        ns(t_slow, n),
        ns(t_check, n),
        ns(t_parse, n),
    );
    // Every frame was ours each way: the numbers are of the path they name.
    assert_eq!(
        (fast.received(), slow.received(), ours),
        (n as u64, n as u64, 2 * n as u64)
    );
}
