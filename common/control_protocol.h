// The control socket's wire format, shared by the daemon and cachefusectl:
// one line per command, "v2 VERB [ARG]", the argument percent-escaped so that
// any byte string but NUL travels safely (a name with a newline, a space or a
// '%' is one argument, never a second command).
#pragma once

#include <optional>
#include <string>

namespace cachefuse {

// Version tag the daemon requires in front of commands that carry a path.
inline constexpr const char* kControlVersion = "v2";

// Bytes below 0x21, 0x7f and '%' become %XX; everything else stays.
std::string EscapeControlArg(const std::string& raw);
// The inverse; nullopt for a malformed escape or an escaped NUL.
std::optional<std::string> UnescapeControlArg(const std::string& escaped);

}  // namespace cachefuse
