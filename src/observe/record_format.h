#pragma once
// A record as one access-log line: the JSON object of base/record_schema.h, or the text format.

#include <fmt/format.h>

#include <cstddef>

#include "http/record.h"

namespace unbroken::observe {

// Appends rec as one JSON object and a newline. Strings are escaped so that nothing a client sends
// can forge a line or inject control characters.
void append_json(fmt::memory_buffer& out, const http::RequestRecord& rec);
// The same facts as one human-readable line, escaped the same way.
void append_text(fmt::memory_buffer& out, const http::RequestRecord& rec);

// The most bytes write_json can write for rec (escaping at most sixfolds a string's bytes).
[[nodiscard]] std::size_t json_bound(const http::RequestRecord& rec);
// Writes what append_json appends, straight to out, which has room for json_bound(rec) bytes; returns
// the end. Allocates nothing: the access log formats into its per-thread buffer with it.
char* write_json(char* out, const http::RequestRecord& rec);

}  // namespace unbroken::observe
