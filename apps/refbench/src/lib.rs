//! refbench's domain code: the hot-remove protection schemes it compares ([`protect`]), the
//! statistics it reports ([`stats`]) and DPDK's own benchmark next to it ([`dpdk_test`]).
pub mod dpdk_test;
pub mod protect;
pub mod stats;
