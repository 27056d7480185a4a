// The libFuzzer entry point for inbound bytes: built and run by scripts/fuzz.sh, not by SwiftPM.
//
// Every input goes through the three readers a Kafka producer can reach:
//   1. `JSONValue.parse`: what parses must be UTF-8, write back to bytes that parse to an equal value,
//      and write the same bytes again; the encoder and decoder must give the value back unchanged;
//   2. `InboundDecoding.parseObject` and `.workflowMessage`: a decoded message, encoded again, must
//      decode to the same message;
//   3. the Codable decoder, into structs of integers, floating-point numbers, strings, optionals and
//      nested arrays; what decodes must encode, and decode again to an equal value.
// A broken invariant is a `fatalError`, which libFuzzer reports as a crash like any trap.
import Foundation
import ShardflowEngine
import ShardflowJSON

struct Integers: Codable, Equatable {
    var int: Int
    var int64: Int64
    var uint: UInt
    var int8: Int8?
    var int32: Int32?
    var uint8: UInt8?
    var uint64: UInt64?
}

struct Floats: Codable, Equatable {
    var double: Double
    var float: Float?
    var date: Date?
}

struct Texts: Codable, Equatable {
    var string: String
    var optional: String?
    var bool: Bool?
    var data: Data?
    var list: [String?]?
}

struct Tree: Codable, Equatable {
    var name: String?
    var matrix: [[Int]]?
    var table: [String: [Double]]?
    var children: [Tree]?
    var value: JSONValue?
}

/// Decoded without a round trip: URL and Decimal do not promise the same value back.
struct Lossy: Codable {
    var url: URL?
    var decimal: Decimal?
    var decimals: [Decimal]?
}

@inline(never)
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes.prefix(400), as: UTF8.self).debugDescription
}

func roundTripsParse(_ bytes: [UInt8]) {
    guard let value = try? JSONValue.parse(bytes) else { return }
    check(String(validating: bytes, as: UTF8.self) != nil, "parsed bytes that are not UTF-8")
    let written = value.jsonBytes()
    let again: JSONValue
    do {
        again = try JSONValue.parse(written)
    } catch {
        fatalError("written text does not parse: \(error) in \(text(written))")
    }
    check(again == value, "round trip changed the value: \(text(bytes)) -> \(text(written))")
    check(again.hashValue == value.hashValue, "equal values hash differently: \(text(written))")
    check(again.jsonBytes() == written, "writing is not stable: \(text(written))")
    check(value.jsonString() == String(decoding: written, as: UTF8.self), "jsonString differs from jsonBytes")
    do {
        check(try JSONValueEncoder().encode(value) == value, "encoder changed the value")
        check(try JSONValueDecoder().decode(JSONValue.self, from: value) == value, "decoder changed the value")
        check(try JSONCoding.decode(JSONValue.self, from: written) == value, "JSONCoding changed the value")
    } catch {
        fatalError("coding a parsed value threw: \(error)")
    }
    _ = value.int64Value
    _ = value.stringValue
    if case .object(let fields) = value {
        for key in fields.keys.prefix(8) { _ = value[key]?.int64Value }
    }
}

func roundTripsInbound(_ bytes: [UInt8]) {
    _ = try? InboundDecoding.parseObject(bytes, maxBytes: 1 << 20)
    guard let message = try? InboundDecoding.workflowMessage(bytes) else { return }
    let encoded: [UInt8]
    do {
        switch message {
        case .start(let start): encoded = try JSONCoding.encodeBytes(start)
        case .cancel(let cancel): encoded = try JSONCoding.encodeBytes(cancel)
        case .event(let event): encoded = try JSONCoding.encodeBytes(event)
        }
    } catch {
        fatalError("encoding an accepted message threw: \(error)")
    }
    do {
        let again = try InboundDecoding.workflowMessage(encoded)
        check(again == message, "message round trip changed it: \(text(bytes)) -> \(text(encoded))")
    } catch {
        fatalError("an accepted message, encoded again, is rejected: \(error) for \(text(encoded))")
    }
}

func roundTrips<T: Codable & Equatable>(_ type: T.Type, _ value: JSONValue) {
    guard let decoded = try? JSONValueDecoder().decode(type, from: value) else { return }
    do {
        let encoded = try JSONValueEncoder().encode(decoded)
        let again = try JSONValueDecoder().decode(type, from: encoded)
        check(again == decoded, "\(T.self) round trip changed the value: \(value.jsonString().prefix(400))")
        check(try JSONCoding.decode(type, from: JSONCoding.encodeBytes(decoded)) == decoded, "\(T.self) text round trip")
    } catch {
        fatalError("\(T.self) decoded from \(value.jsonString().prefix(400)) does not round trip: \(error)")
    }
}

func decodesCodable(_ bytes: [UInt8]) {
    // The text path, as the engine calls it (parse and decode), for one type ...
    _ = try? JSONCoding.decode(Integers.self, from: bytes)
    // ... and the others from one parse.
    guard let value = try? JSONValue.parse(bytes) else { return }
    roundTrips(Integers.self, value)
    roundTrips(Floats.self, value)
    roundTrips(Texts.self, value)
    roundTrips(Tree.self, value)
    roundTrips([Int].self, value)
    roundTrips([String: Int64].self, value)
    roundTrips([[UInt]].self, value)
    roundTrips([Double?].self, value)
    roundTrips(Int.self, value)
    roundTrips(UInt.self, value)
    roundTrips(Int64.self, value)
    roundTrips(Double.self, value)
    roundTrips(String.self, value)
    roundTrips(ControlCommand.self, value)
    roundTrips(StartMessage.self, value)
    _ = try? JSONValueDecoder().decode(Lossy.self, from: value)
    _ = try? JSONValueDecoder().decode([Lossy].self, from: value)
    _ = try? JSONValueDecoder().decode(Float.self, from: value)
    _ = try? JSONValueDecoder().decode(Decimal.self, from: value)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    roundTripsParse(bytes)
    roundTripsInbound(bytes)
    decodesCodable(bytes)
    return 0
}
