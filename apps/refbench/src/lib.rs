//! refbench's domain code: the hot-remove protection schemes it compares ([`protect`]).
pub mod protect;
