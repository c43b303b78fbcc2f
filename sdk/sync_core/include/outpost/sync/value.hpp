#pragma once
/// \file
/// Field values: what one field of a record holds, on the device, in the journal
/// and on the wire (the alternatives match the protocol's Value one to one).

#include <boost/container/flat_map.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace outpost::sync {

/// No value (a field that was never set, or was cleared).
struct Null {
  friend constexpr bool operator==(Null, Null) noexcept { return true; }
};
/// A deleted record or field: kept so that the deletion syncs and can conflict.
struct Tombstone {
  friend constexpr bool operator==(Tombstone, Tombstone) noexcept { return true; }
};
using Bytes = std::vector<std::uint8_t>;
using StringList = std::vector<std::string>;

/// One field's value. Equality is structural (an int64 1 and a double 1.0 differ).
using Value =
    std::variant<Null, Tombstone, bool, std::int64_t, double, std::string, Bytes, StringList>;

/// A record's fields by name, in name order: a sorted vector (a record has tens of
/// fields, read far more often than changed). Inserting or erasing a field moves the
/// ones after it: iterators and references into the map do not survive a change.
using FieldValues = boost::container::flat_map<std::string, Value, std::less<>>;

/// The canonical JSON of a value, used for export and anywhere a value is shown as
/// text: null; {"$tombstone":true}; true/false; an integer; a number with a
/// fraction or exponent for a double; a string; {"$bytes":"<base64>"}; an array of
/// strings. Throws Error{invalid_argument} for a NaN or infinite double.
[[nodiscard]] std::string toJson(const Value& value);

/// Parses the canonical JSON of a value. Throws Error{invalid_argument} for text
/// that is not one.
[[nodiscard]] Value valueFromJson(std::string_view json);

/// Compact binary form used for storage (fast to decode): a tag byte, then the
/// payload. Appends to `out`.
void encodeValue(const Value& value, std::string& out);
/// Decodes one value from the front of `in` and advances it. Throws
/// Error{corrupt} for malformed input.
[[nodiscard]] Value decodeValue(std::string_view& in);

/// The binary form of a whole field map (count, then name/value pairs in name
/// order), and its inverse (throws Error{corrupt}).
[[nodiscard]] std::string encodeFields(const FieldValues& fields);
[[nodiscard]] FieldValues decodeFields(std::string_view in);

/// Field names as numbers, for a store that keeps each name once: `number` gives a
/// name's number (making one for a new name), `name` a number's name (nullptr for a
/// number it never gave, which decoding reports as corrupt). The names' strings must
/// stay where they are while a decoded name is in use.
struct FieldNameCodec {
  std::function<std::uint64_t(std::string_view)> number;
  std::function<const std::string*(std::uint64_t)> name;
  /// A name known so far, with its nameOrderKey.
  struct Known {
    const std::string* name = nullptr;
    std::uint64_t orderKey = 0;
  };
  /// Optional: the names known so far, by number (`name` nullptr where none),
  /// looked up before calling `name` (which may add to it).
  const std::vector<Known>* known = nullptr;
};

/// The first 8 bytes of `name`, big-endian, zero-padded. Where two names' keys
/// differ they order the names as the names themselves do: decoding checks the
/// stored name order with a compare of two integers where it can.
[[nodiscard]] std::uint64_t nameOrderKey(std::string_view name) noexcept;

/// The binary form of a field map with each name replaced by its number (a varint),
/// and its inverse.
[[nodiscard]] std::string encodeFields(const FieldValues& fields, const FieldNameCodec& names);
[[nodiscard]] FieldValues decodeFields(std::string_view in, const FieldNameCodec& names);

/// Reads the binary form of a field map one field at a time, in name order,
/// without building the map: for a caller that takes each value once. Reads
/// `encoded` in place (it must outlive the reader); throws Error{corrupt} as
/// `decodeFields` does. With `names`, the form with numbered names.
class FieldReader {
public:
  explicit FieldReader(std::string_view encoded, const FieldNameCodec* names = nullptr);
  /// The next field, or false after the last one. `name` points into `encoded` (or
  /// at the codec's string for it).
  [[nodiscard]] bool next(std::string_view& name, Value& value);

private:
  std::string_view in_;
  std::uint64_t left_ = 0;
  const FieldNameCodec* names_ = nullptr;
};

/// "null", "tombstone", "bool", "integer", "double", "text", "bytes", "list".
[[nodiscard]] std::string_view valueKindName(const Value& value) noexcept;

} // namespace outpost::sync
