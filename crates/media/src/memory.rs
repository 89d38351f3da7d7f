//! How the transcoder's memory goes back to the system.
//!
//! Every chunk opens a decoder and an x264 encoder per rung, each with its threads and frame
//! buffers of hundreds of kilobytes to megabytes, and closes them at its end. glibc's default
//! policy serves such buffers from per-thread arenas once one of them was freed (its mmap
//! threshold rises with the first freed large block), and keeps freed arena memory: a worker
//! grew to about four times the resident memory of the ffmpeg command line doing the same
//! ladder. With the threshold fixed at 128 KiB, large buffers are mapped and unmapped with their
//! encoder, and the heap is trimmed above 128 KiB free: about 1.3 times ffmpeg's, at a cost in
//! CPU within the benchmark's noise (`bench/RESULTS.md`, transcoding).

/// Buffers at least this large are mapped on their own and returned when freed.
const LARGE_BUFFER_BYTES: i32 = 128 << 10;
/// Arenas for the process's threads: fewer arenas, less memory kept in each.
const ARENAS: i32 = 2;

/// Sets glibc's allocator for transcoding. Call it at the start of a process that transcodes,
/// before it starts threads; elsewhere than glibc it does nothing.
pub fn return_freed_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation parameters, for allocations made after
    // the call; it reads no pointer and is called with valid parameter numbers and values.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE_BUFFER_BYTES);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
