//! Typed identifiers: an ethdev port, one of its queues, an lcore. DPDK passes them all as bare
//! integers (`uint16_t` port and queue ids, `unsigned` lcore ids), so a port id given where a
//! queue id belongs, or an lcore where a port belongs, compiles in C; here it does not.
//!
//! Each is a `#[repr(transparent)]` wrapper over DPDK's own integer type: it costs nothing at
//! run time, and [`get`](PortId::get) (or `From`) hands the raw value to the FFI calls.
//! `Display` prints the bare number, as DPDK's own messages do (`port 0`, `lcore 3`).
//!
//! ```compile_fail
//! // A port id is no queue id (nor an lcore id), though both are a u16 to DPDK.
//! let port = pmd::PortId::new(1);
//! let queue: pmd::QueueId = port;
//! ```

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($raw:ty), $what:literal) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($raw);

        impl $name {
            #[doc = concat!("The ", $what, " with DPDK id `raw`.")]
            #[inline(always)]
            pub const fn new(raw: $raw) -> Self {
                $name(raw)
            }

            #[doc = concat!("The DPDK id of the ", $what, ", as its C API takes it.")]
            #[inline(always)]
            pub const fn get(self) -> $raw {
                self.0
            }

            #[doc = concat!("The id as an index into a table with one entry per ", $what, ".")]
            #[inline(always)]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl From<$raw> for $name {
            #[inline(always)]
            fn from(raw: $raw) -> Self {
                $name(raw)
            }
        }

        impl From<$name> for $raw {
            #[inline(always)]
            fn from(id: $name) -> Self {
                id.0
            }
        }

        /// The bare number (width, fill and alignment apply to it).
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        /// A decimal number, as the integer type parses it.
        impl FromStr for $name {
            type Err = ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// An ethdev port id (`uint16_t port_id` in DPDK).
    PortId(u16),
    "port"
);

id_type!(
    /// A queue id of one port, RX or TX (`uint16_t queue_id` in DPDK).
    QueueId(u16),
    "queue"
);

id_type!(
    /// An lcore id (`unsigned lcore_id` in DPDK): an EAL thread, pinned by `-l`/`-c`.
    LcoreId(u32),
    "lcore"
);

impl LcoreId {
    /// One more than the highest lcore id DPDK allows (`RTE_MAX_LCORE`).
    pub const LIMIT: u32 = dpdk_sys::RTE_MAX_LCORE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_bare_number_with_its_format() {
        assert_eq!(PortId::new(3).to_string(), "3");
        assert_eq!(
            format!("{:>2}|{:<3}|", PortId::new(1), QueueId::new(7)),
            " 1|7  |"
        );
        assert_eq!(format!("lcore {}", LcoreId::new(12)), "lcore 12");
    }

    #[test]
    fn raw_values_round_trip() {
        let p = PortId::from(5u16);
        assert_eq!((p.get(), u16::from(p), p.index()), (5, 5, 5));
        assert_eq!(LcoreId::new(u32::MAX).get(), u32::MAX);
        assert_eq!("17".parse::<QueueId>(), Ok(QueueId::new(17)));
        assert!("-1".parse::<PortId>().is_err());
        assert!(PortId::new(1) < PortId::new(2));
        assert_eq!(std::mem::size_of::<PortId>(), 2);
        assert_eq!(std::mem::size_of::<LcoreId>(), 4);
    }
}
