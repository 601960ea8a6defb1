// Imported first by the native conformance tests: the native backend's uninitialized output
// arrays (src/backends/native/alloc.ts) are NaN-filled before each kernel runs, so an element a
// kernel fails to write fails the comparison with the reference instead of passing as stale zeros.
process.env.ONEBIT_POISON_OUTPUTS = '1';
