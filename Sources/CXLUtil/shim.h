#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <libxl.h>
#include <libxlutil.h>

// libxlutil (Xen's xl.cfg and DISKSPEC parser) has no call that lists the settings of a
// parsed file, or their line numbers: xl only ever asks for the keys it knows. domb must
// also find the keys it does not know (to refuse them with their line), so these two
// declarations restate the head of `struct XLU_Config` and `XLU_ConfigSetting` of
// tools/libs/util/libxlu_internal.h. That layout is the same from Xen 4.13 (2019, when
// `+=` added `op`) to 4.22; the Swift wrapper checks every setting it walks against the
// public getters, so a different layout is refused rather than misread.
struct CXLUtil_Setting {
    struct CXLUtil_Setting *next;
    char *name;
    XLU_ConfigValue *value;
    enum XLU_Operation op;
    int lineno;
};

struct CXLUtil_ConfigHead {
    struct CXLUtil_Setting *settings;
    FILE *report;
    char *config_source;
};

/// The newest setting of `cfg` (libxlutil prepends each statement it stores).
static inline const struct CXLUtil_Setting *CXLUtil_newest_setting(const XLU_Config *cfg) {
    return ((const struct CXLUtil_ConfigHead *)cfg)->settings;
}
