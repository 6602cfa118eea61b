#pragma once
// The words for llhttp's errors that requests and responses share: framing, field syntax, line
// endings, the version. What a person reads (a 400's text, a proxy's 502 reason) is the problem in
// words, never llhttp's internal code.

#include <llhttp.h>

#include <string_view>

namespace unbroken::http {

// nullptr for an error whose words depend on the side (the start line: method, target, status).
const char* shared_error_text(llhttp_errno_t err, const char* llhttp_reason);

// "unsupported HTTP version": a well-formed version other than 1.0 and 1.1, which a server answers
// 505; any other version problem is malformed.
// Compared by content: a literal's address may differ between translation units (it does in a
// Debug build).
inline constexpr std::string_view kUnsupportedVersion = "unsupported HTTP version";

}  // namespace unbroken::http
