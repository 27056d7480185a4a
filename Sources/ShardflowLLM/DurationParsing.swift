import Foundation

/// Parses a command-line duration: `250ms`, `1s`, `2.5s`, `2m`, `1h`, `7d`, or `0`.
/// Returns nil for anything else (negative, missing unit, unknown unit, not a number).
public func parseDuration(_ text: String) -> Duration? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
    if trimmed == "0" { return .zero }
    // "ms" and "us" are tried before "s" and "m" so "250ms" is not read as 250 m + "s".
    let units: [(suffix: String, make: (Double) -> Duration)] = [
        ("ms", { .milliseconds($0) }), ("us", { .microseconds($0) }), ("s", { .seconds($0) }),
        ("m", { .seconds($0 * 60) }), ("h", { .seconds($0 * 3600) }), ("d", { .seconds($0 * 86_400) }),
    ]
    for unit in units where trimmed.hasSuffix(unit.suffix) {
        let number = trimmed.dropLast(unit.suffix.count)
        guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
            let value = Double(number), value.isFinite, value >= 0
        else { return nil }
        return unit.make(value)
    }
    return nil
}
