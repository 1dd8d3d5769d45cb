// A DMA device (or pool) kept after rte_eal_cleanup.
use pmd::{DmaDev, Eal};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=dma_skeleton0"]).unwrap();
    let dev = DmaDev::open(&eal, "dma_skeleton0", 64).unwrap();
    drop(eal);
    let _ = dev.stats();
}
