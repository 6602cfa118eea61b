// The man page is generated, not written: the sections that describe options are walked out of the
// CLI11 App; only the prose around them (files, signals, exit status) is fixed text here.

#include "cli/man_page.h"

namespace unbroken::cli {

namespace {

// What the page says beside the option tables. Kept short: README.md is the manual.
constexpr std::string_view kTail = R"(.SH FILES
.TP
.I /etc/unbroken/unbroken.toml
The settings the Debian package's systemd unit starts
.B serve
with
.RB ( \-\-config ).
Every key is a
.B serve
option without its leading dashes, with underscores for hyphens; an option given on the command line
overrides the file.
.TP
.I /var/lib/unbroken
The packaged server's data: its SQLite session store and its document root.
.SH SIGNALS
.TP
.B SIGHUP
.B serve
reopens its access log (after logrotate moved it) and reloads its TLS certificates.
.TP
.BR SIGTERM ", " SIGINT
.B serve
stops accepting, lets requests in flight finish within the drain timeout, then exits; a second
one exits at once.
.SH EXIT STATUS
0 on success; 2 when the command line or the configuration is wrong; 1 when the server cannot start.
.SH SEE ALSO
.BR logrotate (8),
.BR systemd.service (5)
)";

// "-h,--help" as roff: each name in bold, minus signs escaped.
std::string option_names(const CLI::Option& opt) {
  std::string names = opt.get_positional() ? opt.get_name(true, false) : opt.get_name(false, true);
  std::string out;
  std::size_t start = 0;
  while (start <= names.size()) {
    std::size_t comma = names.find(',', start);
    if (comma == std::string::npos) comma = names.size();
    if (!out.empty()) out += ", ";
    out += "\\fB" + roff_escape(std::string_view(names).substr(start, comma - start)) + "\\fR";
    start = comma + 1;
  }
  return out;
}

// The same hints --help shows after the names: the value's type, its default, repetition, REQUIRED.
std::string option_value(const CLI::Option& opt) {
  std::string out;
  if (const std::string type = opt.get_type_name(); !type.empty()) out += " \\fI" + roff_escape(type) + "\\fR";
  if (const std::string def = opt.get_default_str(); !def.empty()) out += "=" + roff_escape(def);
  if (opt.get_expected_max() == CLI::detail::expected_max_vector_size) out += " ...";
  if (opt.get_required()) out += " (required)";
  return out;
}

void append_options(std::string& page, const CLI::App& app) {
  for (const CLI::Option* opt : app.get_options([](const CLI::Option* o) { return !o->get_group().empty(); })) {
    page += ".TP\n" + option_names(*opt) + option_value(*opt) + "\n";
    page += roff_escape(opt->get_description()) + "\n";
  }
}

}  // namespace

std::string roff_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
    line_start = c == '\n';
  }
  return out;
}

std::string man_page(const CLI::App& app) {
  const auto visible = [](const CLI::App* sub) { return !sub->get_group().empty(); };
  std::string page = ".TH UNBROKEN 1 \"\" \"unbroken\" \"User Commands\"\n";
  // "unbroken: an HTTP/1.1 server ..." gives the summary after the colon.
  const std::string& description = app.get_description();
  const std::size_t colon = description.find(": ");
  const std::string summary = colon == std::string::npos ? description : description.substr(colon + 2);
  page += ".SH NAME\nunbroken \\- " + roff_escape(summary) + "\n";
  page += ".SH SYNOPSIS\n";
  for (const CLI::App* sub : app.get_subcommands(visible)) {
    page += ".B unbroken " + sub->get_name() + "\n.RI [ options ]\n";
    for (const CLI::Option* opt : sub->get_options([](const CLI::Option* o) { return o->get_positional(); })) {
      const bool many = opt->get_expected_max() == CLI::detail::expected_max_vector_size;
      page += ".IR " + roff_escape(opt->get_name(true, false)) + (many ? " \" ...\"" : "") + "\n";
    }
    page += ".br\n";
  }
  page += ".SH DESCRIPTION\n.B unbroken\nis " + roff_escape(summary) + ".\n";
  page += "Each subcommand prints the options below with\n.BR \\-\\-help .\n";
  page += ".SH OPTIONS\n";
  append_options(page, app);
  for (const CLI::App* sub : app.get_subcommands(visible)) {
    page += ".SH \"unbroken " + sub->get_name() + "\"\n" + roff_escape(sub->get_description()) + ".\n";
    append_options(page, *sub);
  }
  page += kTail;
  return page;
}

}  // namespace unbroken::cli
