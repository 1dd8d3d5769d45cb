// A burst of mbufs (and a free batch) kept past their pool.
use pmd::{Burst, Eal, FreeBatch, Mempool};

fn main() {
    let eal = Eal::init(&["t", "--no-huge"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let mut burst = Burst::new();
    let _ = burst.push(pool.alloc().unwrap());
    let mut batch = FreeBatch::new();
    batch.push(pool.alloc().unwrap());
    drop(pool);
    let _ = burst.len();
    batch.flush();
}
