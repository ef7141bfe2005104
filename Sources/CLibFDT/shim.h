#pragma once
#include <libfdt.h>

// libfdt exposes its header accessors as function-like macros, which Swift cannot import.
static inline uint32_t CLibFDT_magic(const void *fdt) { return fdt_magic(fdt); }
static inline uint32_t CLibFDT_totalsize(const void *fdt) { return fdt_totalsize(fdt); }
static inline uint32_t CLibFDT_version(const void *fdt) { return fdt_version(fdt); }
static inline uint32_t CLibFDT_size_dt_struct(const void *fdt) { return fdt_size_dt_struct(fdt); }
