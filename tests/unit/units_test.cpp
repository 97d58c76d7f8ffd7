// Tests for common/units: size and duration parsing.
#include <catch2/catch.hpp>

#include "common/units.h"

using cachefuse::FormatSize;
using cachefuse::ParseSeconds;
using cachefuse::ParseSize;

TEST_CASE("ParseSize accepts plain numbers and binary suffixes") {
  CHECK(ParseSize("0") == 0u);
  CHECK(ParseSize("4096") == 4096u);
  CHECK(ParseSize("256k") == 256u * 1024);
  CHECK(ParseSize("256K") == 256u * 1024);
  CHECK(ParseSize("256KiB") == 256u * 1024);
  CHECK(ParseSize("64M") == 64ull << 20);
  CHECK(ParseSize("2g") == 2ull << 30);
  CHECK(ParseSize("1T") == 1ull << 40);
}

TEST_CASE("ParseSize rejects garbage and overflow") {
  CHECK_FALSE(ParseSize(""));
  CHECK_FALSE(ParseSize("k"));
  CHECK_FALSE(ParseSize("-1"));
  CHECK_FALSE(ParseSize("12q"));
  CHECK_FALSE(ParseSize("1.5M"));
  CHECK_FALSE(ParseSize("99999999999999999999"));
  CHECK_FALSE(ParseSize("17179869184T"));
}

TEST_CASE("ParseSeconds understands units") {
  CHECK(ParseSeconds("1") == 1.0);
  CHECK(ParseSeconds("0.5") == 0.5);
  CHECK(ParseSeconds("200ms") == Approx(0.2));
  CHECK(ParseSeconds("2m") == 120.0);
  CHECK_FALSE(ParseSeconds("-1"));
  CHECK_FALSE(ParseSeconds("abc"));
  CHECK_FALSE(ParseSeconds("1x"));
}

TEST_CASE("FormatSize picks a readable unit") {
  CHECK(FormatSize(17) == "17 B");
  CHECK(FormatSize(256 * 1024) == "256 KiB");
  CHECK(FormatSize(1536ull << 20) == "1.5 GiB");
}
