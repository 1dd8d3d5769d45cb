// Unplugging a device by name, without owning it: the forwarding port net_null0 pulled out
// from under the lcores polling it.
use pmd::Eal;

fn main() {
    let eal = Eal::init(&["t", "--no-huge", "--vdev=net_null0"]).unwrap();
    pmd::hotplug_remove(&eal, "vdev", "net_null0").unwrap();
}
