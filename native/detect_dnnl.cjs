// Prints 1 when oneDNN's C++ header is installed (Debian/Ubuntu: libdnnl-dev; macOS: brew onednn), else 0.
// Used by binding.gyp to decide whether the oneDNN float kernels are compiled in.
const fs = require('fs');
const dirs = ['/usr/include', '/usr/local/include', '/opt/homebrew/include', process.env.DNNL_INCLUDE_DIR].filter(Boolean);
process.stdout.write(dirs.some((d) => fs.existsSync(`${d}/oneapi/dnnl/dnnl.hpp`)) ? '1' : '0');
