// memcpy / memset for the calls the compiler may emit on its own (struct copies); -ffreestanding
// keeps it from turning these loops back into calls to themselves.
#include "common.h"

void* memcpy(void* dst, const void* src, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  const unsigned char* s = (const unsigned char*)src;
  for (size_t i = 0; i < n; i++) d[i] = s[i];
  return dst;
}

void* memset(void* dst, int c, size_t n) {
  unsigned char* d = (unsigned char*)dst;
  for (size_t i = 0; i < n; i++) d[i] = (unsigned char)c;
  return dst;
}

// 1 in the SIMD build, 0 in the scalar one (the TypeScript side checks the name it was given).
OB_EXPORT(ob_simd) int32_t ob_simd(void) {
#ifdef __wasm_simd128__
  return 1;
#else
  return 0;
#endif
}
