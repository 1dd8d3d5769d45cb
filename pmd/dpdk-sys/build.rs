//! Builds the C shim and generates the bindings against the system DPDK found by pkg-config.
//!
//! The bindings are generated at build time from `shim/shim.h`, so they always match the
//! installed headers (Debian's DPDK 22.11: `apt-get install libdpdk-dev libclang-dev`).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");

    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .cargo_metadata(false)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "DPDK 22.11 not found by pkg-config ({e}); install it with \
                 `apt-get install -y dpdk libdpdk-dev libclang-dev`"
            )
        });

    // Link the shared DPDK libraries so that the EAL loads its driver plugins (net_null,
    // net_pcap, dma_skeleton, ...) from the default plugin directory, as dpdk-testpmd does.
    for dir in &dpdk.link_paths {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in &dpdk.libs {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }

    let mut build = cc::Build::new();
    build
        .file("shim/shim.c")
        .opt_level(3)
        .flag("-include")
        .flag("rte_config.h");
    build.flag_if_supported("-march=corei7");
    build.define("ALLOW_EXPERIMENTAL_API", None);
    for inc in &dpdk.include_paths {
        build.include(inc);
    }
    build.compile("dpdk_shim");

    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.extend(["-include".into(), "rte_config.h".into()]);
    clang_args.push("-DALLOW_EXPERIMENTAL_API".into());
    clang_args.push("-march=corei7".into());

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&clang_args)
        .allowlist_function("shim_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|mp_wait_lcore|get_configuration|get_runtime_dir|iova_mode)")
        .allowlist_function("rte_(strerror|socket_id|lcore_count|get_main_lcore|get_next_lcore|lcore_to_socket_id|get_tsc_hz|thread_register|thread_unregister|delay_us_block|lcore_is_enabled|ctrl_thread_create)")
        .allowlist_function("rte_eth_.*")
        .allowlist_function("rte_pktmbuf_(pool_create|free_bulk)")
        .allowlist_function("rte_mempool_(free|lookup|obj_iter)")
        .allowlist_function("rte_dma_.*")
        .allowlist_function("rte_dev_(probe|remove|event_.*|name|bus_info|hotplug_handle_enable|hotplug_handle_disable)")
        .allowlist_function("rte_eal_hotplug_(add|remove)")
        .allowlist_function("rte_rcu_qsbr_(get_memsize|init|thread_register|thread_unregister|synchronize)")
        .allowlist_function("rte_telemetry_register_cmd|rte_tel_data_.*")
        .allowlist_type("rte_mbuf")
        // The static-inline fast path that `pmd::fastpath` implements in Rust reads these:
        // the ethdev and dmadev fast-path tables, and the mempool, its per-lcore caches and
        // its driver ops (rte_ethdev_core.h, rte_dmadev_core.h, rte_mempool.h).
        .allowlist_type("rte_eth_fp_ops")
        .allowlist_var("rte_eth_fp_ops")
        .allowlist_type("rte_dma_fp_object")
        .allowlist_var("rte_dma_fp_objs")
        .allowlist_type("rte_mempool_cache")
        .allowlist_type("rte_mempool_ops_table")
        .allowlist_var("rte_mempool_ops_table")
        .allowlist_type("rte_dma_status_code")
        .allowlist_var("RTE_.*")
        .blocklist_function("rte_eth_dev_(get_port_by_name_|)")
        .opaque_type("rte_rcu_qsbr")
        .opaque_type("rte_eth_dev")
        .opaque_type("rte_eth_dev_data")
        .allowlist_var("SHIM_.*")
        .opaque_type("rte_device")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .parse_callbacks(Box::new(ShimFlagsAreU64))
        .generate()
        .expect("bindgen failed on shim/shim.h");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("cannot write bindings");
}

/// The shim's `SHIM_*` macros are 64-bit flag masks: type them as `u64` whatever their value.
#[derive(Debug)]
struct ShimFlagsAreU64;

impl bindgen::callbacks::ParseCallbacks for ShimFlagsAreU64 {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        name.starts_with("SHIM_")
            .then_some(bindgen::callbacks::IntKind::U64)
    }
}
