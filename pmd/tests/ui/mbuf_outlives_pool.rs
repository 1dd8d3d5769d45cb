// An mbuf used after its pool was dropped (and freed with rte_mempool_free).
use pmd::{Eal, Mempool};

fn main() {
    let eal = Eal::init(&["t", "--no-huge"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let m = pool.alloc().unwrap();
    drop(pool);
    let _ = m.data();
}
