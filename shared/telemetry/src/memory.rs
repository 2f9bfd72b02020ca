//! Memory the allocator holds after start-up.
//!
//! Starting, records and consent parse the R4 JSON Schema and search parameters (tens of
//! megabytes of `serde_json` values) to compile what they keep, and free the rest. glibc's
//! allocator keeps freed heap pages mapped for reuse: records stayed at 104 MB resident, of
//! which 41 MB came back to the system when asked (measured with `malloc_trim(0)` on a running
//! service). Services call [`release_freed`] once their start-up is done.

/// Returns the heap pages freed so far to the operating system (glibc on Linux; elsewhere a
/// no-op).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks the allocator's own free lists; it takes no pointer and
    // has no precondition.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The resident memory of this process in bytes (Linux; None elsewhere).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_heap_goes_back_to_the_system() {
        // Many small blocks, as a parsed JSON document is, with a few kept alive among them
        // (what start-up compiles and keeps): the heap cannot shrink from its top by itself.
        let mut blocks: Vec<Vec<u8>> = (0..400_000).map(|i| vec![(i % 251) as u8; 160]).collect();
        let kept: Vec<Vec<u8>> = blocks.iter_mut().step_by(64).map(std::mem::take).collect();
        let held = resident_bytes().unwrap_or(0);
        drop(blocks);
        let freed = resident_bytes().unwrap_or(0);
        assert!(
            freed + 16 * 1024 * 1024 > held,
            "the allocator gave the pages back by itself ({held} -> {freed} bytes)"
        );
        release_freed();
        let released = resident_bytes().unwrap_or(u64::MAX);
        assert!(
            released + 32 * 1024 * 1024 < freed,
            "resident {freed} bytes after freeing the blocks, {released} after releasing them"
        );
        assert_eq!(kept.len(), 6250);
    }
}
