#include "outpost/sync/value.hpp"

#include <outpost/error.hpp>

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace outpost::sync {

namespace {

using nlohmann::json;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

enum Tag : std::uint8_t {
  kNull = 0,
  kTombstone = 1,
  kFalse = 2,
  kTrue = 3,
  kInteger = 4,
  kDouble = 5,
  kText = 6,
  kBytes = 7,
  kList = 8,
};

void putVarint(std::uint64_t v, std::string& out) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

[[noreturn]] void malformed() { throw Error(Errc::corrupt, "a stored field value is malformed"); }

std::uint64_t getVarint(std::string_view& in) {
  if (!in.empty() && static_cast<std::uint8_t>(in.front()) < 0x80) {
    // One byte: field numbers, small integers and short texts' lengths.
    const auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    return b;
  }
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) {
      malformed();
    }
    const auto b = static_cast<std::uint8_t>(in.front());
    in.remove_prefix(1);
    v |= std::uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) {
      return v;
    }
  }
  malformed();
}

std::string_view getChunk(std::string_view& in) {
  const std::uint64_t n = getVarint(in);
  if (n > in.size()) {
    malformed();
  }
  const std::string_view chunk = in.substr(0, static_cast<std::size_t>(n));
  in.remove_prefix(static_cast<std::size_t>(n));
  return chunk;
}

void putChunk(std::string_view s, std::string& out) {
  putVarint(s.size(), out);
  out.append(s);
}

json toJsonValue(const Value& value) {
  return std::visit(
      Overloaded{
          [](Null) { return json(nullptr); },
          [](Tombstone) {
            return json{{"$tombstone", true}};
          },
          [](bool b) { return json(b); },
          [](std::int64_t i) { return json(i); },
          [](double d) {
            if (!std::isfinite(d)) {
              throw Error(Errc::invalid_argument, "a NaN or infinite number has no JSON form");
            }
            return json(d);
          },
          [](const std::string& s) { return json(s); },
          [](const Bytes& b) {
            std::string text(sodium_base64_encoded_len(b.size(), sodium_base64_VARIANT_ORIGINAL),
                             '\0');
            sodium_bin2base64(text.data(), text.size(), b.data(), b.size(),
                              sodium_base64_VARIANT_ORIGINAL);
            text.resize(std::strlen(text.c_str()));
            return json{{"$bytes", text}};
          },
          [](const StringList& l) { return json(l); },
      },
      value);
}

[[noreturn]] void notAValue(std::string_view why) {
  throw Error(Errc::invalid_argument, "not a field value: " + std::string(why));
}

} // namespace

std::string toJson(const Value& value) { return toJsonValue(value).dump(); }

Value valueFromJson(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  switch (j.type()) {
  case json::value_t::null:
    return Null{};
  case json::value_t::boolean:
    return j.get<bool>();
  case json::value_t::number_integer:
    return j.get<std::int64_t>();
  case json::value_t::number_unsigned: {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) {
      notAValue("integer out of range");
    }
    return static_cast<std::int64_t>(u);
  }
  case json::value_t::number_float:
    return j.get<double>();
  case json::value_t::string:
    return j.get<std::string>();
  case json::value_t::array: {
    StringList list;
    for (const json& item : j) {
      if (!item.is_string()) {
        notAValue("a list holds only strings");
      }
      list.push_back(item.get<std::string>());
    }
    return list;
  }
  case json::value_t::object:
    if (j.size() == 1 && j.contains("$tombstone") && j["$tombstone"] == true) {
      return Tombstone{};
    }
    if (j.size() == 1 && j.contains("$bytes") && j["$bytes"].is_string()) {
      const auto& b64 = j["$bytes"].get_ref<const std::string&>();
      Bytes out(b64.size());
      std::size_t len = 0;
      if (sodium_base642bin(out.data(), out.size(), b64.data(), b64.size(), nullptr, &len, nullptr,
                            sodium_base64_VARIANT_ORIGINAL) != 0) {
        notAValue("bad base64");
      }
      out.resize(len);
      return out;
    }
    notAValue("unknown object");
  default:
    notAValue("not JSON");
  }
}

void encodeValue(const Value& value, std::string& out) {
  std::visit(Overloaded{
                 [&](Null) { out.push_back(static_cast<char>(kNull)); },
                 [&](Tombstone) { out.push_back(static_cast<char>(kTombstone)); },
                 [&](bool b) { out.push_back(static_cast<char>(b ? kTrue : kFalse)); },
                 [&](std::int64_t i) {
                   out.push_back(static_cast<char>(kInteger));
                   // zig-zag, so small negative numbers stay small
                   const auto u = static_cast<std::uint64_t>(i);
                   putVarint((u << 1) ^ (i < 0 ? ~std::uint64_t{0} : 0), out);
                 },
                 [&](double d) {
                   out.push_back(static_cast<char>(kDouble));
                   const auto bits = std::bit_cast<std::uint64_t>(d);
                   for (int k = 0; k < 8; ++k) {
                     out.push_back(static_cast<char>((bits >> (8 * k)) & 0xFF));
                   }
                 },
                 [&](const std::string& s) {
                   out.push_back(static_cast<char>(kText));
                   putChunk(s, out);
                 },
                 [&](const Bytes& b) {
                   out.push_back(static_cast<char>(kBytes));
                   putChunk({reinterpret_cast<const char*>(b.data()), b.size()}, out);
                 },
                 [&](const StringList& l) {
                   out.push_back(static_cast<char>(kList));
                   putVarint(l.size(), out);
                   for (const std::string& s : l) {
                     putChunk(s, out);
                   }
                 },
             },
             value);
}

namespace {

/// Decodes one value from the front of `in` and calls `make(std::in_place_type<T>,
/// args...)` with the arguments that construct it, so the caller builds it where it
/// is kept: no default value replaced, no temporary moved in.
template <class Make>
decltype(auto) decodeValueWith(std::string_view& in, Make&& make) {
  if (in.empty()) {
    malformed();
  }
  const auto tag = static_cast<std::uint8_t>(in.front());
  in.remove_prefix(1);
  switch (tag) {
  case kNull:
    return make(std::in_place_type<Null>);
  case kTombstone:
    return make(std::in_place_type<Tombstone>);
  case kFalse:
    return make(std::in_place_type<bool>, false);
  case kTrue:
    return make(std::in_place_type<bool>, true);
  case kInteger: {
    const std::uint64_t z = getVarint(in);
    return make(std::in_place_type<std::int64_t>,
                static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1)));
  }
  case kDouble: {
    if (in.size() < 8) {
      malformed();
    }
    std::uint64_t bits = 0;
    for (int k = 0; k < 8; ++k) {
      bits |= std::uint64_t{static_cast<std::uint8_t>(in[static_cast<std::size_t>(k)])} << (8 * k);
    }
    in.remove_prefix(8);
    return make(std::in_place_type<double>, std::bit_cast<double>(bits));
  }
  case kText:
    return make(std::in_place_type<std::string>, getChunk(in));
  case kBytes: {
    const std::string_view raw = getChunk(in);
    return make(std::in_place_type<Bytes>, raw.begin(), raw.end());
  }
  case kList: {
    const std::uint64_t n = getVarint(in);
    if (n > in.size()) {
      malformed();
    }
    StringList list;
    list.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t k = 0; k < n; ++k) {
      list.emplace_back(getChunk(in));
    }
    return make(std::in_place_type<StringList>, std::move(list));
  }
  default:
    malformed();
  }
}

/// Replaces `out` with the value at the front of `in`.
void decodeValueInto(std::string_view& in, Value& out) {
  decodeValueWith(in, [&]<class T, class... Args>(std::in_place_type_t<T>, Args&&... args) {
    out.emplace<T>(std::forward<Args>(args)...);
  });
}

} // namespace

Value decodeValue(std::string_view& in) {
  return decodeValueWith(in, [](auto tag, auto&&... args) {
    return Value(tag, std::forward<decltype(args)>(args)...);
  });
}

namespace {

void putName(std::string_view name, const FieldNameCodec* names, std::string& out) {
  if (names) {
    putVarint(names->number(name), out);
  } else {
    putChunk(name, out);
  }
}

struct Name {
  std::string_view text;
  std::uint64_t orderKey = 0;
};

Name getName(std::string_view& in, const FieldNameCodec* names) {
  if (!names) {
    const std::string_view text = getChunk(in);
    return {text, nameOrderKey(text)};
  }
  const std::uint64_t number = getVarint(in);
  if (names->known && number < names->known->size()) {
    const FieldNameCodec::Known& k = (*names->known)[static_cast<std::size_t>(number)];
    if (k.name) {
      return {*k.name, k.orderKey};
    }
  }
  const std::string* name = names->name(number);
  if (name == nullptr) {
    malformed(); // a number the store never gave out
  }
  return {*name, nameOrderKey(*name)};
}

std::string encodeWith(const FieldValues& fields, const FieldNameCodec* names) {
  std::string out;
  out.reserve(64 + fields.size() * 16);
  putVarint(fields.size(), out);
  for (const auto& [name, value] : fields) {
    putName(name, names, out);
    encodeValue(value, out);
  }
  return out;
}

FieldValues decodeWith(std::string_view in, const FieldNameCodec* names) {
  const std::uint64_t n = getVarint(in);
  // The fields are stored in name order, so the map is adopted as it is read. A
  // field takes at least two bytes: a count beyond that is refused by the reads.
  FieldValues::sequence_type seq;
  seq.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, in.size() / 2)));
  std::uint64_t lastKey = 0;
  for (std::uint64_t k = 0; k < n; ++k) {
    const auto [name, key] = getName(in, names);
    if (!seq.empty() &&
        !(lastKey < key || (lastKey == key && std::string_view(seq.back().first) < name))) {
      malformed(); // out of order or repeated: not what encodeFields writes
    }
    lastKey = key;
    // Built in place: the name's string and the value in the pair's own variant.
    decodeValueWith(in, [&](auto tag, auto&&... args) {
      seq.emplace_back(std::piecewise_construct, std::forward_as_tuple(name),
                       std::forward_as_tuple(tag, std::forward<decltype(args)>(args)...));
    });
  }
  if (!in.empty()) {
    malformed();
  }
  FieldValues fields;
  fields.adopt_sequence(boost::container::ordered_unique_range, std::move(seq));
  return fields;
}

} // namespace

std::string encodeFields(const FieldValues& fields) { return encodeWith(fields, nullptr); }

FieldValues decodeFields(std::string_view in) { return decodeWith(in, nullptr); }

std::string encodeFields(const FieldValues& fields, const FieldNameCodec& names) {
  return encodeWith(fields, &names);
}

FieldValues decodeFields(std::string_view in, const FieldNameCodec& names) {
  return decodeWith(in, &names);
}

FieldReader::FieldReader(std::string_view encoded, const FieldNameCodec* names)
    : in_(encoded), left_(getVarint(in_)), names_(names) {}

bool FieldReader::next(std::string_view& name, Value& value) {
  if (left_ == 0) {
    if (!in_.empty()) {
      malformed();
    }
    return false;
  }
  --left_;
  name = getName(in_, names_).text;
  decodeValueInto(in_, value);
  return true;
}

std::uint64_t nameOrderKey(std::string_view name) noexcept {
  std::uint64_t key = 0;
  const std::size_t n = std::min<std::size_t>(name.size(), 8);
  for (std::size_t k = 0; k < n; ++k) {
    key |= std::uint64_t{static_cast<unsigned char>(name[k])} << (56 - 8 * k);
  }
  return key;
}

std::string_view valueKindName(const Value& value) noexcept {
  static constexpr std::string_view kNames[] = {"null",   "tombstone", "bool",  "integer",
                                                "double", "text",      "bytes", "list"};
  return kNames[value.index()];
}

} // namespace outpost::sync
