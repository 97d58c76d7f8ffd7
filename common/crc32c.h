// CRC-32C (Castagnoli), used to detect torn or garbled xattrs and side-car maps.
#pragma once

#include <cstdint>
#include <string_view>

namespace cachefuse {

uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace cachefuse
