#pragma once

#include <string>

namespace gophermq::broker {

// A random (version 4) UUID from the kernel's CSPRNG: a subscription id is the subscriber's
// capability, so it must not be guessable.
[[nodiscard]] std::string random_uuid_v4();

}  // namespace gophermq::broker
