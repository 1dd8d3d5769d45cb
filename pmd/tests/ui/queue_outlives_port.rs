// A queue handle polled after its port was closed.
use pmd::{Burst, Eal, Mempool, Port, PortConfig, PortId, QueueId};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=net_null0"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let port = Port::configure(&eal, PortId::new(0), &PortConfig::default(), &pool).unwrap();
    let mut q = port.rx_queue(QueueId::new(0)).unwrap();
    drop(port);
    let mut burst = Burst::new();
    q.rx_burst(&mut burst);
}
