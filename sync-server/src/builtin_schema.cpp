// The built-in schema's merge policies, read from the SDK's public API (the same
// registration the devices' record stores run), never copied by hand.

#include <outpost/records.hpp>
#include <outpost/safeguarding.hpp>
#include <outpost/server/builtin_schema.hpp>

namespace outpost::server {

std::vector<FieldPolicy> builtinFieldPolicies() {
  model::Schema schema;
  model::registerSafeguardingTypes(schema);
  std::vector<FieldPolicy> out;
  for (const std::string& name : schema.typeNames()) {
    const model::EntityType* type = schema.find(name);
    if (type == nullptr) {
      continue;
    }
    for (const model::FieldSpec& field : type->fields) {
      out.push_back({type->name, field.name, field.policy});
    }
  }
  return out;
}

} // namespace outpost::server
