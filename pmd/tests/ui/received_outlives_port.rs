// Mbufs received from a port, kept after the port and its pool are gone.
use pmd::{Burst, Eal, Mempool, Port, PortConfig, PortId, QueueId};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=net_null0"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let mut burst = Burst::new();
    {
        let port = Port::configure(&eal, PortId::new(0), &PortConfig::default(), &pool).unwrap();
        let mut q = port.rx_queue(QueueId::new(0)).unwrap();
        q.rx_burst(&mut burst);
    }
    drop(pool);
    let _ = burst.len();
}
