//! CRC-32C (Castagnoli), as the SSE4.2 `crc32` instruction computes it: reflected, polynomial
//! 0x1EDC6F41 (0x82F63B78 reflected), no initial or final inversion, bytes little-endian. The
//! instruction takes 8 bytes in 3 cycles; every x86-64 CPU DPDK 22.11 runs on has it (its x86
//! baseline is SSE4.2), and the bitwise fallback computes the same value where it is missing.
//! `unsafe` is here only because a function compiled for SSE4.2 may be called only on a CPU
//! that has it, which is checked first. The workspace is built for SSE4.2, as DPDK itself is
//! (`.cargo/config.toml`): the check is then decided at compile time and the instruction is
//! inlined into its callers; a build without the flag (such as the loom one) still gets the
//! instruction, through the run-time check and calls.

/// The CRC-32C of the 16 bytes `a` then `b` (each little-endian), from `seed`.
#[inline]
pub fn crc32c_2x64(seed: u32, a: u64, b: u64) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU has SSE4.2, checked just above.
            return unsafe { crc32c_2x64_sse42(seed, a, b) };
        }
    }
    crc32c_u64_bitwise(crc32c_u64_bitwise(seed, a), b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn crc32c_2x64_sse42(seed: u32, a: u64, b: u64) -> u32 {
    use std::arch::x86_64::_mm_crc32_u64;
    _mm_crc32_u64(_mm_crc32_u64(u64::from(seed), a), b) as u32
}

/// One bit at a time: the definition, for CPUs without the instruction (and to test it).
fn crc32c_u64_bitwise(mut crc: u32, v: u64) -> u32 {
    for byte in v.to_le_bytes() {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instruction_and_the_definition_agree() {
        // CRC-32C's check value: "123456789" with inversion in and out is 0xE3069283.
        let data = *b"123456789\0\0\0\0\0\0\0";
        let a = u64::from_le_bytes(data[..8].try_into().unwrap());
        let mut crc = !0u32;
        crc = crc32c_u64_bitwise(crc, a);
        // The 9th byte alone, bitwise, then the inversion out.
        crc ^= u32::from(data[8]);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
        assert_eq!(!crc, 0xE306_9283);
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (s, a, b) = (x as u32, x.rotate_left(17), !x);
            assert_eq!(
                crc32c_2x64(s, a, b),
                crc32c_u64_bitwise(crc32c_u64_bitwise(s, a), b)
            );
        }
    }
}
