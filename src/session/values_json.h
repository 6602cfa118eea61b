#pragma once
// A session's values as one JSON object of strings, for stores that keep a blob per session.

#include <optional>
#include <string>
#include <string_view>

#include "session/session_store.h"

namespace unbroken::session {

std::string encode_values(const SessionValues& values);
// nullopt when the text is not a JSON object of strings (a corrupt row is treated as no session).
std::optional<SessionValues> decode_values(std::string_view json);

}  // namespace unbroken::session
