import Foundation
import ShardflowJSON
import Testing

/// The Codable coder must read what Foundation's JSONEncoder wrote (journals written before it)
/// and write what JSONDecoder reads.
@Suite struct JSONValueCoderTests {
    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case polygon(sides: Int, label: String?)
        case empty
    }

    struct Everything: Codable, Equatable {
        var text: String
        var flag: Bool
        var int: Int
        var small: Int8
        var unsigned: UInt64
        var float: Float
        var double: Double
        var optionalSet: String?
        var optionalNil: Int?
        var list: [Int]
        var nested: [[String]]
        var byName: [String: Int]
        var byNumber: [Int: String]
        var shapes: [Shape]
        var date: Date
        var data: Data
        var url: URL
        var json: JSONValue
    }

    /// A class hierarchy that encodes through `superEncoder()`, as hand-written Codable may.
    class Base: Codable {
        var id: Int
        init(id: Int) { self.id = id }
    }

    final class Derived: Base {
        var name: String
        init(id: Int, name: String) {
            self.name = name
            super.init(id: id)
        }

        private enum CodingKeys: String, CodingKey { case name }

        required init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            try super.init(from: container.superDecoder())
        }

        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try super.encode(to: container.superEncoder())
        }
    }

    static let sample = Everything(
        text: "quote \" slash / newline \n tab \t unicode é 😀", flag: true, int: -42, small: -8, unsigned: 9_000_000_000,
        float: 1.5, double: 0.1, optionalSet: "set", optionalNil: nil, list: [1, 2, 3], nested: [["a"], [], ["b", "c"]],
        byName: ["b": 2, "a": 1], byNumber: [3: "three", 1: "one"],
        shapes: [.circle(radius: 2.5), .polygon(sides: 6, label: nil), .polygon(sides: 3, label: "tri"), .empty],
        date: Date(timeIntervalSinceReferenceDate: 123_456.25), data: Data([0, 1, 2, 250, 255]),
        url: URL(string: "https://example.com/a?b=c")!, json: .object(["k": .array([.int(1), .null, .bool(false)])]))

    @Test func roundTripsThroughItself() throws {
        let text = try JSONCoding.encodeString(Self.sample)
        #expect(try JSONCoding.decode(Everything.self, from: text) == Self.sample)
    }

    @Test func readsWhatFoundationWrites() throws {
        let foundation = String(decoding: try JSONEncoder().encode(Self.sample), as: UTF8.self)
        #expect(try JSONCoding.decode(Everything.self, from: foundation) == Self.sample)
    }

    @Test func writesWhatFoundationReads() throws {
        let ours = try JSONCoding.encodeBytes(Self.sample)
        #expect(try JSONDecoder().decode(Everything.self, from: Data(ours)) == Self.sample)
    }

    @Test func writesSortedCompactTextLikeTheContractEncoder() throws {
        let foundation = JSONEncoder()
        foundation.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let value = ["zeta": [1, 2], "alpha": [3]]
        #expect(try JSONCoding.encodeString(value) == String(decoding: try foundation.encode(value), as: UTF8.self))
        #expect(try JSONCoding.encodeString(Self.Shape.polygon(sides: 4, label: "sq"))
                    == #"{"polygon":{"label":"sq","sides":4}}"#)
    }

    @Test func superEncodersNestTheParentUnderSuper() throws {
        let text = try JSONCoding.encodeString(Derived(id: 7, name: "seven"))
        #expect(text == #"{"name":"seven","super":{"id":7}}"#)
        let decoded = try JSONCoding.decode(Derived.self, from: text)
        #expect(decoded.id == 7 && decoded.name == "seven")
    }

    @Test func scalarsAndFragments() throws {
        #expect(try JSONCoding.encodeString(5) == "5")
        #expect(try JSONCoding.encodeString("a\"b") == #""a\"b""#)
        #expect(try JSONCoding.encodeString(Optional<Int>.none) == "null")
        #expect(try JSONCoding.decode(Int.self, from: "3.0") == 3)
        #expect(try JSONCoding.decode(Double.self, from: "3") == 3.0)
        #expect(try JSONCoding.decode(Int?.self, from: "null") == nil)
        #expect(try JSONCoding.decode([String?].self, from: #"["x",null]"#) == ["x", nil])
    }

    @Test func badInputGivesDescriptiveErrors() throws {
        struct Needs: Codable { var count: Int; var name: String }
        #expect(throws: DecodingError.self) { try JSONCoding.decode(Needs.self, from: #"{"count":1}"#) }
        #expect(throws: DecodingError.self) { try JSONCoding.decode(Needs.self, from: #"{"count":"1","name":"x"}"#) }
        #expect(throws: DecodingError.self) { try JSONCoding.decode(Int8.self, from: "300") }
        #expect(throws: DecodingError.self) { try JSONCoding.decode(Int.self, from: "1.5") }
        #expect(throws: DecodingError.self) { try JSONCoding.decode(Data.self, from: #""not base64!""#) }
        #expect(throws: EncodingError.self) { try JSONCoding.encodeString(Double.nan) }
        #expect(throws: EncodingError.self) { try JSONCoding.encodeString(["x": Double.infinity]) }
        #expect(throws: (any Error).self) { try JSONCoding.decode(Needs.self, from: "{not json") }
        do {
            _ = try JSONCoding.decode(Needs.self, from: #"{"count":1}"#)
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "name")
        }
    }
}
