#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (flock) on `shard-NNN.lock`: one writer per shard store. A second
/// opener, in this process or another, fails at once; the OS drops the lock when the process dies.
final class ShardLock: Sendable {
    let path: String
    private let descriptor: Int32

    init(path: String, shard: Int) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ShardError.io("cannot open lock file \(path): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK {
                throw ShardError.locked(shard: shard, lockPath: path)
            }
            throw ShardError.io("cannot lock \(path): \(String(cString: strerror(code)))")
        }
        self.path = path
        self.descriptor = fd
    }

    /// Releases the lock (closing the descriptor drops the flock).
    func release() {
        close(descriptor)
    }
}
