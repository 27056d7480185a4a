import CJemalloc

/// The process's memory allocator. The `shardflow` executable links jemalloc in place of glibc's malloc:
/// the engine, the JSON coder and the HTTP client allocate and free many small objects on many threads,
/// where glibc's malloc and free took about 13% of a worker's samples in `perf`. Worker CPU per LLM step with
/// jemalloc against glibc, pairs run alternately: median 0.97 (0.86–0.97, 7 pairs), and a lower peak RSS
/// (docs/performance.md, "Where a worker's CPU goes").
enum MemoryAllocator {
    /// For example "jemalloc 5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c".
    static var description: String {
        var version: UnsafePointer<CChar>?
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &length, nil, 0) == 0, let version else { return "jemalloc" }
        return "jemalloc " + String(cString: version)
    }
}
