// Entity types, records' accessors, and checking values against a type.

#include "record_validation.hpp"

#include <outpost/error.hpp>
#include <outpost/expression.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace outpost::model {

namespace {

using nlohmann::json;

FieldSpec commonField(std::string_view name, const EntityType& type) {
  FieldSpec f;
  f.name = std::string(name);
  if (name == "status") {
    f.type = type.statuses.empty() ? FieldType::text : FieldType::enumeration;
    f.allowed = type.statuses;
  } else if (name == "owner_team" || name == "retention_class" || name == "created_by") {
    f.required = true;
  }
  return f;
}

void checkSpec(const FieldSpec& f, const std::string& where) {
  if (f.name.empty()) {
    throw Error(Errc::invalid_argument, where + ": a field has no name");
  }
  if (f.name.starts_with('$')) {
    // '$' names are the sync layer's (e.g. "$record", the record itself).
    throw Error(Errc::invalid_argument,
                where + "." + f.name + ": field names may not start with '$'");
  }
  if (f.type == FieldType::enumeration && f.allowed.empty()) {
    throw Error(Errc::invalid_argument, where + "." + f.name + ": an enum needs allowed values");
  }
  if (f.type == FieldType::structured && f.subFields.empty()) {
    throw Error(Errc::invalid_argument, where + "." + f.name + ": a structure needs sub-fields");
  }
  std::set<std::string> names;
  for (const FieldSpec& sub : f.subFields) {
    checkSpec(sub, where + "." + f.name);
    if (!names.insert(sub.name).second) {
      throw Error(Errc::invalid_argument, where + "." + f.name + ": sub-field given twice");
    }
  }
}

std::string joinAllowed(const std::vector<std::string>& allowed) {
  std::string s;
  for (const std::string& a : allowed) {
    s += (s.empty() ? "" : ", ") + a;
  }
  return s;
}

} // namespace

std::string_view fieldTypeName(FieldType type) noexcept {
  switch (type) {
  case FieldType::text:
    return "text";
  case FieldType::integer:
    return "integer";
  case FieldType::boolean:
    return "bool";
  case FieldType::date:
    return "date";
  case FieldType::dateTime:
    return "date-time";
  case FieldType::enumeration:
    return "enum";
  case FieldType::list:
    return "list";
  case FieldType::reference:
    return "reference";
  case FieldType::structured:
    return "structured";
  }
  return "unknown";
}

void Schema::add(EntityType type) {
  if (type.name.empty()) {
    throw Error(Errc::invalid_argument, "an entity type needs a name");
  }
  if (types_.contains(type.name)) {
    throw Error(Errc::already_exists, "entity type '" + type.name + "' is already registered");
  }
  std::map<std::string, FieldSpec, std::less<>> index;
  for (const std::string_view common : kCommonFields) {
    index.emplace(std::string(common), commonField(common, type));
  }
  for (const FieldSpec& f : type.fields) {
    checkSpec(f, type.name);
    if (!index.emplace(f.name, f).second) {
      throw Error(Errc::invalid_argument,
                  type.name + "." + f.name + ": the name is reserved or given twice");
    }
  }
  for (const std::string& name : type.searchFields) {
    const auto it = index.find(name);
    if (it == index.end() || it->second.type != FieldType::text) {
      throw Error(Errc::invalid_argument, type.name + "." + name + ": search fields must be text");
    }
  }
  for (const std::string* name : {&type.riskField, &type.signedField}) {
    if (!name->empty() && !index.contains(*name)) {
      throw Error(Errc::invalid_argument, type.name + "." + *name + ": no such field");
    }
  }
  TypeIndex ti;
  for (const auto& [name, spec] : index) {
    if (spec.type == FieldType::reference ||
        (spec.type == FieldType::list && !spec.referenceType.empty())) {
      ti.references.push_back(name);
    }
  }
  ti.fields.reserve(index.size());
  for (auto& [fieldName, spec] : index) {
    ti.fields.emplace(fieldName, std::move(spec));
  }
  for (const auto& [fieldName, spec] : ti.fields) {
    ti.byName.push_back(&spec);
  }
  std::sort(ti.byName.begin(), ti.byName.end(),
            [](const FieldSpec* a, const FieldSpec* b) { return a->name < b->name; });
  std::string name = type.name;
  const auto it = types_.emplace(std::move(name), std::move(type)).first;
  index_.emplace(&it->second, std::move(ti));
}

const Schema::TypeIndex* Schema::indexOf(const EntityType& type) const {
  auto it = index_.find(&type);
  if (it == index_.end()) {
    // A copy of a registered type: find it by name.
    const EntityType* registered = find(type.name);
    it = registered ? index_.find(registered) : index_.end();
  }
  return it == index_.end() ? nullptr : &it->second;
}

const std::vector<std::string>& Schema::referenceFields(const EntityType& type) const {
  static const std::vector<std::string> kNone;
  const TypeIndex* ti = indexOf(type);
  return ti ? ti->references : kNone;
}

const EntityType* Schema::find(std::string_view name) const noexcept {
  const auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

const FieldSpec* Schema::field(const EntityType& type, std::string_view name) const {
  const TypeIndex* ti = indexOf(type);
  if (!ti) {
    return nullptr;
  }
  const auto f = ti->fields.find(name);
  return f == ti->fields.end() ? nullptr : &f->second;
}

std::span<const FieldSpec* const> Schema::fieldsByName(const EntityType& type) const {
  const TypeIndex* ti = indexOf(type);
  return ti ? std::span<const FieldSpec* const>(ti->byName) : std::span<const FieldSpec* const>();
}

std::vector<std::string> Schema::typeNames() const {
  std::vector<std::string> names;
  for (const auto& [name, type] : types_) {
    names.push_back(name);
  }
  return names;
}

const Value& Record::get(std::string_view field) const noexcept {
  static const Value kNull{sync::Null{}};
  const auto it = fields.find(field);
  return it == fields.end() ? kNull : it->second;
}

std::string Record::text(std::string_view field) const {
  const auto* s = std::get_if<std::string>(&get(field));
  return s ? *s : std::string();
}

std::optional<std::int64_t> Record::integer(std::string_view field) const {
  const auto* i = std::get_if<std::int64_t>(&get(field));
  return i ? std::optional(*i) : std::nullopt;
}

FieldClock Record::clockOf(std::string_view field) const {
  const auto it = changedClocks.find(field);
  return it == changedClocks.end() ? FieldClock{createdHlc, device} : it->second;
}

// ---------------------------------------------------------------------------
// Value checks
// ---------------------------------------------------------------------------

namespace {

void checkJsonAgainst(const std::vector<FieldSpec>& subFields, const json& object,
                      const std::string& where, std::vector<FieldProblem>& problems);

bool jsonMatches(const FieldSpec& spec, const json& v, const std::string& where,
                 std::vector<FieldProblem>& problems) {
  switch (spec.type) {
  case FieldType::text:
    return v.is_string();
  case FieldType::reference:
    return v.is_string() && sync::Uuid::parse(v.get_ref<const std::string&>()).has_value();
  case FieldType::date:
    return v.is_string() && parseDate(v.get_ref<const std::string&>()).has_value();
  case FieldType::enumeration:
    return v.is_string() && std::find(spec.allowed.begin(), spec.allowed.end(),
                                      v.get_ref<const std::string&>()) != spec.allowed.end();
  case FieldType::integer:
  case FieldType::dateTime:
    return v.is_number_integer();
  case FieldType::boolean:
    return v.is_boolean();
  case FieldType::list:
    return v.is_array() &&
           std::all_of(v.begin(), v.end(), [](const json& item) { return item.is_string(); });
  case FieldType::structured:
    if (!v.is_object()) {
      return false;
    }
    checkJsonAgainst(spec.subFields, v, where, problems);
    return true;
  }
  return false;
}

void checkJsonAgainst(const std::vector<FieldSpec>& subFields, const json& object,
                      const std::string& where, std::vector<FieldProblem>& problems) {
  for (const FieldSpec& sub : subFields) {
    const auto it = object.find(sub.name);
    if (it == object.end() || it->is_null()) {
      if (sub.required) {
        problems.push_back({where + "." + sub.name, "is required"});
      }
      continue;
    }
    if (!jsonMatches(sub, *it, where + "." + sub.name, problems)) {
      problems.push_back(
          {where + "." + sub.name,
           "must be " + std::string(fieldTypeName(sub.type)) +
               (sub.allowed.empty() ? "" : " (one of: " + joinAllowed(sub.allowed) + ")")});
    }
  }
  for (const auto& [key, value] : object.items()) {
    if (std::none_of(subFields.begin(), subFields.end(),
                     [&](const FieldSpec& s) { return s.name == key; })) {
      problems.push_back({where, "has an unknown entry"});
      break;
    }
  }
}

void checkStructured(const FieldSpec& spec, const std::string& text, const std::string& where,
                     std::vector<FieldProblem>& problems) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) {
    problems.push_back({where, "must be a JSON object"});
    return;
  }
  checkJsonAgainst(spec.subFields, j, where, problems);
}

} // namespace

void checkValue(const FieldSpec& spec, const Value& value, const std::string& where,
                const ReferenceLookup& lookup, std::vector<FieldProblem>& problems) {
  const auto wrongType = [&] {
    problems.push_back({where, "must be " + std::string(fieldTypeName(spec.type))});
  };
  if (std::holds_alternative<sync::Null>(value)) {
    if (spec.required) {
      problems.push_back({where, "is required"});
    }
    return;
  }
  const auto checkReference = [&](const std::string& text) {
    const auto id = sync::Uuid::parse(text);
    if (!id) {
      problems.push_back({where, "must be a record id"});
      return;
    }
    const auto type = lookup(*id);
    if (!type) {
      problems.push_back({where, "refers to a record that does not exist"});
    } else if (!spec.referenceType.empty() && *type != spec.referenceType) {
      problems.push_back({where, "must refer to a " + spec.referenceType});
    }
  };
  switch (spec.type) {
  case FieldType::text:
  case FieldType::date:
  case FieldType::enumeration:
  case FieldType::reference:
  case FieldType::structured: {
    const auto* s = std::get_if<std::string>(&value);
    if (!s) {
      wrongType();
      return;
    }
    if (spec.type == FieldType::date && !parseDate(*s)) {
      problems.push_back({where, "must be a date YYYY-MM-DD"});
    } else if (spec.type == FieldType::enumeration &&
               std::find(spec.allowed.begin(), spec.allowed.end(), *s) == spec.allowed.end()) {
      problems.push_back({where, "must be one of: " + joinAllowed(spec.allowed)});
    } else if (spec.type == FieldType::reference) {
      checkReference(*s);
    } else if (spec.type == FieldType::structured) {
      checkStructured(spec, *s, where, problems);
    }
    return;
  }
  case FieldType::integer:
  case FieldType::dateTime:
    if (!std::holds_alternative<std::int64_t>(value)) {
      wrongType();
    }
    return;
  case FieldType::boolean:
    if (!std::holds_alternative<bool>(value)) {
      wrongType();
    }
    return;
  case FieldType::list: {
    const auto* l = std::get_if<sync::StringList>(&value);
    if (!l) {
      wrongType();
      return;
    }
    for (std::size_t i = 0; i < l->size(); ++i) {
      const std::string& item = (*l)[i];
      const std::string at = where + "[" + std::to_string(i) + "]";
      if (!spec.allowed.empty() &&
          std::find(spec.allowed.begin(), spec.allowed.end(), item) == spec.allowed.end()) {
        problems.push_back({at, "must be one of: " + joinAllowed(spec.allowed)});
      } else if (!spec.referenceType.empty()) {
        checkReference(item);
      } else if (!spec.subFields.empty()) {
        checkStructured(spec, item, at, problems);
      }
    }
    return;
  }
  }
}

bool isSigned(const EntityType& type, const FieldValues& fields) {
  if (type.signedField.empty()) {
    return false;
  }
  const auto it = fields.find(type.signedField);
  return it != fields.end() && !std::holds_alternative<sync::Null>(it->second);
}

std::vector<FieldProblem> checkWrite(const Schema& schema, const EntityType& type,
                                     const FieldValues* before, const FieldValues& after,
                                     const FieldValues& changed, const ReferenceLookup& lookup) {
  std::vector<FieldProblem> problems;
  const std::string prefix = type.name + ".";
  static const std::string kField; // checkValue's paths, relative to the field
  FieldSpecWalk specOf(schema, &type);
  for (const auto& [name, value] : changed) {
    const FieldSpec* spec = specOf(name);
    if (!spec) {
      problems.push_back({prefix + name, "is not a field of " + type.name});
      continue;
    }
    if (std::holds_alternative<sync::Tombstone>(value)) {
      problems.push_back({prefix + name, "cannot be deleted by a write"});
      continue;
    }
    const std::size_t had = problems.size();
    checkValue(*spec, value, kField, lookup, problems);
    for (std::size_t k = had; k < problems.size(); ++k) { // the path made only when needed
      problems[k].field.insert(0, prefix + name);
    }
    if (before == nullptr) {
      continue;
    }
    if (name == "created_by") {
      problems.push_back({prefix + name, "cannot change"});
    }
    const auto old = before->find(name);
    if (spec->policy == sync::MergePolicy::appendOnly && old != before->end()) {
      const auto* was = std::get_if<sync::StringList>(&old->second);
      const auto* now = std::get_if<sync::StringList>(&value);
      if (was && (!now || now->size() < was->size() ||
                  !std::equal(was->begin(), was->end(), now->begin()))) {
        problems.push_back({prefix + name, "is append-only: entries can be added, not changed"});
      }
    }
    if (isSigned(type, *before) &&
        (spec->policy == sync::MergePolicy::immutableAfterSign || name == type.signedField)) {
      problems.push_back({prefix + name, "is signed and frozen: add an addendum instead"});
    }
  }
  // Required fields (the common ones and the type's, in name order) must hold a
  // value after the write: a second merge walk, over `after`.
  auto have = after.begin();
  for (const FieldSpec* spec : schema.fieldsByName(type)) {
    if (!spec->required) {
      continue;
    }
    int c = -1; // have's name against the spec's: one compare a step
    while (have != after.end() && (c = have->first.compare(spec->name)) < 0) {
      ++have;
    }
    if (c != 0) {
      problems.push_back({prefix + spec->name, "is required"});
    }
  }
  if (problems.empty()) {
    const RuleInput input{before, after, changed};
    for (const TypeRule& rule : type.rules) {
      auto found = rule(input);
      problems.insert(problems.end(), found.begin(), found.end());
    }
  }
  return problems;
}

std::string describeProblems(const std::vector<FieldProblem>& problems) {
  std::string s;
  for (const FieldProblem& p : problems) {
    s += (s.empty() ? "" : "; ") + p.field + ": " + p.message;
  }
  return s;
}

} // namespace outpost::model
