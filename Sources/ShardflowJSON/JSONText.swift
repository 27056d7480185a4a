/// A small, fast JSON reader and writer for `JSONValue`. The reader reports the byte offset of the
/// first error; the writer produces compact JSON with object keys sorted, so equal values give
/// equal bytes.
///
/// The reader takes any bytes a producer can send: it rejects duplicate keys, nesting deeper than
/// `JSONValue.maxNestingDepth` and numbers outside the range of a `Double`, so every value it returns
/// is written back unchanged and the recursive code over values (writer, coder, `==`) stays shallow.
package enum JSONText {
    // MARK: writing

    package static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number): out.append(contentsOf: String(number).utf8)
        case .double(let number): writeDouble(number, into: &out)
        case .string(let text): writeString(text, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(fields[key] ?? .null, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    package static func writeDouble(_ number: Double, into out: inout [UInt8]) {
        guard number.isFinite else {
            out.append(contentsOf: "null".utf8)  // JSON has no NaN or infinity
            return
        }
        if number == number.rounded(), abs(number) < 1e15 {
            out.append(contentsOf: String(Int64(number)).utf8)
        } else {
            out.append(contentsOf: "\(number)".utf8)
        }
    }

    /// Copies runs of bytes that need no escape in one go: long texts (prompts, answers) are the bulk
    /// of what the engine writes.
    package static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < index { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index])) }
                appendEscape(of: byte, into: &out)
                runStart = index + 1
            }
            if runStart < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(of byte: UInt8, into out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                    hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
        }
    }

    // MARK: reading

    package struct ParseError: Error {
        let offset: Int
        let message: String
    }

    /// Keys and characters quoted in error messages: JSON-escaped, cut to a readable length.
    static func quoted(_ text: String) -> String {
        let scalars = text.unicodeScalars
        var shown = String(String.UnicodeScalarView(scalars.prefix(64)))
        if scalars.count > 64 { shown += "..." }
        var out: [UInt8] = []
        writeString(shown, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    package static func parse(_ bytes: [UInt8]) throws(ParseError) -> JSONValue {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw ParseError(offset: parser.index, message: "unexpected data after the value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        func fail(_ message: String) -> ParseError { ParseError(offset: index, message: message) }

        /// `depth`: how many arrays and objects enclose the value.
        mutating func value(depth: Int) throws(ParseError) -> JSONValue {
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < JSONValue.maxNestingDepth else {
                    throw fail("nesting deeper than \(JSONValue.maxNestingDepth) levels")
                }
                return bytes[index] == UInt8(ascii: "{") ? try object(depth: depth) : try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            case let byte where byte > 0x20 && byte < 0x7F:
                throw fail("unexpected character '\(Character(Unicode.Scalar(byte)))'")
            case let byte:
                let hex = String(byte, radix: 16, uppercase: true)
                throw fail("unexpected byte 0x\(byte < 0x10 ? "0" + hex : hex)")
            }
        }

        mutating func literal(_ word: String) throws(ParseError) {
            for expected in word.utf8 {
                guard index < bytes.count, bytes[index] == expected else { throw fail("invalid literal, expected \(word)") }
                index += 1
            }
        }

        mutating func object(depth: Int) throws(ParseError) -> JSONValue {
            index += 1
            var fields: [String: JSONValue] = [:]
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(fields)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyStart = index
                let key = try string()
                // Last-one-wins would let two readers of the same message see different values. Swift
                // compares keys by canonical equivalence, so "\u00e9" and "e\u0301" are the same key too.
                guard fields[key] == nil else {
                    throw ParseError(offset: keyStart, message: "duplicate key \(quoted(key)) in an object")
                }
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                index += 1
                skipWhitespace()
                fields[key] = try value(depth: depth + 1)
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of input in an object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(fields) }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws(ParseError) -> JSONValue {
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw fail("unexpected end of input in an array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func string() throws(ParseError) -> String {
            index += 1
            let start = index
            var out: [UInt8] = []
            var escaped = false
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    let end = index
                    index += 1
                    // Validated and copied once, straight from the input when nothing was escaped.
                    let decoded = escaped
                        ? String(validating: out, as: UTF8.self)
                        : bytes.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[start..<end]), as: UTF8.self) }
                    guard let decoded else { throw ParseError(offset: start, message: "string is not valid UTF-8") }
                    return decoded
                }
                if byte < 0x20 { throw fail("control character in a string") }
                if byte == UInt8(ascii: "\\") {
                    if !escaped {
                        out.append(contentsOf: bytes[start..<index])
                        escaped = true
                    }
                    index += 1
                    guard index < bytes.count else { break }
                    switch bytes[index] {
                    case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
                    case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                    case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\\"), bytes[index + 2] == UInt8(ascii: "u") else {
                                throw fail("unpaired surrogate")
                            }
                            index += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid low surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid unicode escape") }
                        out.append(contentsOf: String(Character(unicode)).utf8)
                    default: throw fail("invalid escape")
                    }
                    index += 1
                    continue
                }
                if escaped { out.append(byte) }
                index += 1
            }
            throw fail("unterminated string")
        }

        /// Reads the 4 hex digits after `\u` (index on the `u`); leaves index on the last digit.
        mutating func hex4() throws(ParseError) -> UInt32 {
            var value: UInt32 = 0
            for _ in 0..<4 {
                index += 1
                guard index < bytes.count else { throw fail("unexpected end of input in a unicode escape") }
                let byte = bytes[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw fail("invalid hex digit in a unicode escape")
                }
                value = value * 16 + digit
            }
            return value
        }

        mutating func number() throws(ParseError) -> JSONValue {
            let start = index
            var isInteger = true
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                throw fail("invalid number")
            }
            if bytes[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                isInteger = false
                index += 1
                guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                    throw fail("invalid number: digits expected after '.'")
                }
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                isInteger = false
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else {
                    throw fail("invalid number: digits expected in the exponent")
                }
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .int(integer) }
            // Integers beyond Int64 become the nearest double; 1e400 would be infinity, which JSON
            // cannot write back, so it is refused. Underflow (1e-400) reads as 0.
            guard let double = Double(text) else { throw ParseError(offset: start, message: "invalid number") }
            guard double.isFinite else { throw ParseError(offset: start, message: "number out of the range of a double") }
            return .double(double)
        }
    }
}
