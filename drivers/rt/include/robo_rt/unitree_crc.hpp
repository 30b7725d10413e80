// The CRC Unitree robots check on LowCmd_ / LowState_ (unitree_sdk2 `crc32_core`): CRC-32/MPEG-2
// (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no reflection, no final xor) over 32-bit words, each
// taken little-endian from the message's C struct image and fed most significant bit first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace robo::rt {

/// CRC of the first `n_words` 32-bit little-endian words at `bytes`.
inline std::uint32_t unitreeCrc(const std::uint8_t* bytes, std::size_t n_words) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n_words; ++i) {
    const std::uint32_t word = static_cast<std::uint32_t>(bytes[4 * i]) | (static_cast<std::uint32_t>(bytes[4 * i + 1]) << 8) |
                               (static_cast<std::uint32_t>(bytes[4 * i + 2]) << 16) |
                               (static_cast<std::uint32_t>(bytes[4 * i + 3]) << 24);
    for (std::uint32_t bit = 0x80000000u; bit != 0; bit >>= 1) {
      const bool top = (crc & 0x80000000u) != 0;
      crc <<= 1;
      if (top != ((word & bit) != 0)) crc ^= 0x04C11DB7u;
    }
  }
  return crc;
}

}  // namespace robo::rt
