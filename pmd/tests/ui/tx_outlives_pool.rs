// An mbuf of a short-lived pool sent on a port: the driver may hold it in its TX ring until the
// port is closed, after that pool is gone.
use pmd::{Burst, Eal, Mempool, Port, PortConfig, PortId, QueueId};

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=net_null0"]).unwrap();
    let pool = Mempool::create(&eal, "p", 1024, 0, 2176, 0).unwrap();
    let port = Port::configure(&eal, PortId::new(0), &PortConfig::default(), &pool).unwrap();
    {
        let short = Mempool::create(&eal, "short", 1024, 0, 2176, 0).unwrap();
        let mut burst = Burst::new();
        let _ = burst.push(short.alloc().unwrap());
        let mut txq = port.tx_queue(QueueId::new(0)).unwrap();
        txq.tx_burst(&mut burst);
    }
    drop(port);
}
