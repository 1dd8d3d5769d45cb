//! l2fwd apart from its main: its options (one type for the command line and `[l2fwd]`),
//! in a library so that they build and are tested on their own.
pub mod options;
