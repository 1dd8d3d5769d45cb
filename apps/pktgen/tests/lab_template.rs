//! configs/pktgen-lab.toml parses and resolves as it is (it cannot run here: no PCI devices).

use std::ffi::OsString;
use std::path::Path;

#[test]
fn the_lab_template_parses_and_names_its_ports() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/pktgen-lab.toml");
    let loaded = apps_common::options::load_from::<pktgen::options::PktgenOptions, _>([
        OsString::from("pktgen"),
        "--config".into(),
        path.clone().into_os_string(),
    ])
    .unwrap_or_else(|e| panic!("{e:#}"));
    loaded.options.resolve().unwrap_or_else(|e| panic!("{e:#}"));
    for d in ["0000:5e:00.0", "0000:5e:00.1"] {
        assert!(
            loaded.eal.windows(2).any(|w| w[0] == "-a" && w[1] == d),
            "-a {d} in {:?}",
            loaded.eal
        );
    }
    let text = std::fs::read_to_string(&path).unwrap();
    for prerequisite in ["intel_iommu=on iommu=pt", "iommu_group", "numa_node"] {
        assert!(text.contains(prerequisite), "{prerequisite}");
    }
}
