// The built-in safeguarding entity types (DOMAIN.md) and their lifecycle rules.

#include <outpost/records.hpp>

namespace outpost::model {

void registerSafeguardingTypes(Schema& schema) { (void)schema; }

} // namespace outpost::model
