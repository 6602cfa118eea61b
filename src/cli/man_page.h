// unbroken(1): the man page, written from the same CLI11 App that prints --help, so the page lists
// exactly the subcommands and options the binary accepts.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace unbroken::cli {

// The roff source of unbroken(1) for `app` and its visible subcommands (a subcommand or option in
// the empty group is hidden from --help and from the page alike).
[[nodiscard]] std::string man_page(const CLI::App& app);

// `text` as roff body text: backslashes and hyphens escaped, a leading '.' or '\'' neutralised.
[[nodiscard]] std::string roff_escape(std::string_view text);

}  // namespace unbroken::cli
