// Raw IO addresses handed to a DMA engine from safe code: it could write anywhere, or into an
// mbuf freed before the copy completes.
use pmd::{DmaDev, Eal};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=dma_skeleton0"]).unwrap();
    let dev = DmaDev::open(&eal, "dma_skeleton0", 64).unwrap();
    let mut chan = dev.channel().unwrap();
    let _ = chan.copy(0x1000, 0x2000, 64);
}
