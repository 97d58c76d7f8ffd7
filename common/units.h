// Parsing and printing of sizes ("256k", "1MiB", "4G") and durations ("1.5", "200ms").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachefuse {

// Bytes from "123", "256k", "256K", "256KiB", "1M", "2g", "1T" (binary multiples).
std::optional<uint64_t> ParseSize(std::string_view text);

// Seconds from "1", "0.5", "200ms", "2s", "1m" (minutes). Non-negative.
std::optional<double> ParseSeconds(std::string_view text);

// "256 KiB", "1.5 GiB", "17 B".
std::string FormatSize(uint64_t bytes);

}  // namespace cachefuse
