// Unplug takes the device it removes from the handle that owns it, not from a name.
use pmd::{DmaDev, Eal};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=dma_skeleton0"]).unwrap();
    let dev = DmaDev::open(&eal, "dma_skeleton0", 64).unwrap();
    let _ = dev.unplug(&eal, "vdev", "net_null0");
}
