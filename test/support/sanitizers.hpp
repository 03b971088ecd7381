#pragma once

// GOPHERMQ_TEST_SANITIZED is defined in builds under AddressSanitizer or ThreadSanitizer (GCC
// and Clang spell the check differently), where RSS and glibc's heap statistics say nothing about
// the broker's own use of memory.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GOPHERMQ_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GOPHERMQ_TEST_SANITIZED 1
#endif
#endif
