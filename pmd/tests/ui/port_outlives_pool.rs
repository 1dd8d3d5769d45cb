// A port whose RX queues allocate from a pool that was dropped (net_null, net_ring and
// net_pcap allocate at receive time).
use pmd::{Burst, Eal, Mempool, Port, PortConfig, PortId, QueueId};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=net_null0"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let mut port = Port::configure(&eal, PortId::new(0), &PortConfig::default(), &pool).unwrap();
    drop(pool);
    port.start().unwrap();
    let mut q = port.rx_queue(QueueId::new(0)).unwrap();
    let mut burst = Burst::new();
    q.rx_burst(&mut burst);
}
