#pragma once
#include <stdint.h>
#include <stdbool.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <xentoollog.h>

// LIBXL_VERSION is a plain macro but libxl_ctx_alloc wants it as the ABI check value; give
// it a typed name so the Swift side does not depend on how the macro is spelt.
static inline int CXenlight_version(void) { return LIBXL_VERSION; }
